package dockerapi

import (
	"net/http"
	"time"

	"github.com/berth-runtime/berth/engine"
)

func (s *Server) routeNetworks() {
	s.mux.HandleFunc("GET /networks", s.listNetworks)
	s.mux.HandleFunc("POST /networks/create", s.createNetwork)
	s.mux.HandleFunc("POST /networks/prune", s.pruneNetworks)
	s.mux.HandleFunc("GET /networks/{id}", s.inspectNetwork)
	s.mux.HandleFunc("DELETE /networks/{id}", s.removeNetwork)
	s.mux.HandleFunc("POST /networks/{id}/connect", s.connectNetwork)
	s.mux.HandleFunc("POST /networks/{id}/disconnect", s.disconnectNetwork)
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name, Driver string
		Internal     bool
		Labels       map[string]string
		IPAM         *struct {
			Config []struct{ Subnet, Gateway, IPRange string }
		}
	}
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	req := engine.NetworkCreate{Name: b.Name, Driver: b.Driver, Internal: b.Internal, Labels: b.Labels}
	if b.IPAM != nil && len(b.IPAM.Config) > 0 {
		req.IPAM = &engine.IPAMConfig{Subnet: b.IPAM.Config[0].Subnet, Gateway: b.IPAM.Config[0].Gateway}
	}
	n, err := s.engine.CreateNetwork(req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"Id": n.ID, "Warning": ""})
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	all, err := s.engine.Networks()
	if err != nil {
		writeError(w, err)
		return
	}
	out := []map[string]any{}
	for _, n := range all {
		if engine.NetworkMatches(n, filters) {
			out = append(out, s.networkJSON(n, false))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) inspectNetwork(w http.ResponseWriter, r *http.Request) {
	n, err := s.engine.FindNetwork(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.networkJSON(n, true))
}

// networkJSON is a network as dockerd lists and inspects it; with members,
// the containers on it.
func (s *Server) networkJSON(n engine.Network, members bool) map[string]any {
	ipam := map[string]any{"Driver": "default", "Options": map[string]string{}, "Config": []map[string]string{}}
	if n.Subnet != "" {
		ipam["Config"] = []map[string]string{{"Subnet": n.Subnet, "Gateway": n.Gateway}}
	}
	out := map[string]any{
		"Name": n.Name, "Id": n.ID, "Created": n.Created.Format(time.RFC3339Nano), "Scope": "local", "Driver": n.Driver,
		"EnableIPv6": false, "IPAM": ipam, "Internal": n.Internal, "Attachable": false, "Ingress": false,
		"ConfigFrom": map[string]string{"Network": ""}, "ConfigOnly": false, "Options": map[string]string{},
		"Labels": nonNilMap(n.Labels), "Containers": map[string]any{},
	}
	if n.Builtin() {
		out["Created"] = "0001-01-01T00:00:00Z"
	}
	if members {
		cs := map[string]any{}
		for _, m := range s.engine.Members(n) {
			cs[m.Container.ID] = map[string]string{"Name": m.Container.Name, "EndpointID": m.Container.SandboxID, "MacAddress": "",
				"IPv4Address": m.IP, "IPv6Address": ""}
		}
		out["Containers"] = cs
	}
	return out
}

func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request) {
	answer(w, s.engine.RemoveNetwork(r.Context(), r.PathValue("id")), http.StatusNoContent)
}

// pruneNetworks is `docker network prune`.
func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) {
	deleted, err := s.engine.PruneNetworks(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"NetworksDeleted": deleted})
}

// connectNetwork is `docker network connect [--alias A] NET CONTAINER`.
func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Container      string
		EndpointConfig *struct{ Aliases []string }
	}
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	var aliases []string
	if b.EndpointConfig != nil {
		aliases = b.EndpointConfig.Aliases
	}
	answer(w, s.engine.Connect(r.Context(), r.PathValue("id"), b.Container, aliases), http.StatusOK)
}

// disconnectNetwork is `docker network disconnect NET CONTAINER`.
func (s *Server) disconnectNetwork(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Container string
		Force     bool
	}
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	answer(w, s.engine.Disconnect(r.Context(), r.PathValue("id"), b.Container), http.StatusOK)
}
