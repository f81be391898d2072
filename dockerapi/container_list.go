package dockerapi

import (
	"net/http"

	"github.com/berth-runtime/berth/engine"
)

// listContainers is `docker ps`.
func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	list, err := s.engine.List(boolParam(r, "all"), filters)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []map[string]any{}
	for _, c := range list {
		b := engine.ConfigOf(c)
		out = append(out, map[string]any{
			"Id": c.ID, "Names": []string{"/" + c.Name}, "Image": c.ImageRef, "ImageID": c.ImageID,
			"Command": engine.Command(c), "Created": c.CreatedAt.Unix(), "State": engine.State(c),
			"Status": s.engine.Status(c), "Labels": nonNilMap(c.Labels), "Ports": portsJSON(s.engine.Ports(c, b)), "Mounts": []any{},
			"HostConfig": map[string]string{"NetworkMode": b.NetworkName()},
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func portsJSON(ports []engine.Port) []map[string]any {
	out := []map[string]any{}
	for _, p := range ports {
		j := map[string]any{"PrivatePort": p.PrivatePort, "Type": p.Type}
		if p.PublicPort != 0 {
			j["IP"], j["PublicPort"] = p.IP, p.PublicPort
		}
		out = append(out, j)
	}
	return out
}
