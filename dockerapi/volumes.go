package dockerapi

import (
	"net/http"
	"slices"
	"time"

	"github.com/berth-runtime/berth/engine"
)

func (s *Server) routeVolumes() {
	s.mux.HandleFunc("GET /volumes", s.listVolumes)
	s.mux.HandleFunc("POST /volumes/create", s.createVolume)
	s.mux.HandleFunc("GET /volumes/{name}", s.inspectVolume)
	s.mux.HandleFunc("DELETE /volumes/{name}", s.removeVolume)
	s.mux.HandleFunc("POST /volumes/prune", s.pruneVolumes)
}

func volumeJSON(v engine.Volume) map[string]any {
	return map[string]any{"Name": v.Name, "Driver": "local", "Mountpoint": v.Mountpoint, "Scope": "local",
		"CreatedAt": v.CreatedAt.UTC().Format(time.RFC3339), "Labels": nonNilMap(v.Labels), "Options": map[string]string{}}
}

func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name, Driver string
		Labels       map[string]string
	}
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	v, err := s.engine.CreateVolume(b.Name, b.Driver, b.Labels)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, volumeJSON(v))
}

func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	list, err := s.engine.Volumes(filters)
	if err != nil {
		writeError(w, err)
		return
	}
	vols := []map[string]any{}
	for _, v := range list {
		vols = append(vols, volumeJSON(v))
	}
	writeJSON(w, http.StatusOK, map[string]any{"Volumes": vols, "Warnings": []string{}})
}

func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request) {
	v, err := s.engine.InspectVolume(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, volumeJSON(v))
}

func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) {
	answer(w, s.engine.RemoveVolume(r.PathValue("name")), http.StatusNoContent)
}

// pruneVolumes is `docker volume prune [-a]`.
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	all := slices.Contains(filters["all"], "true") || slices.Contains(filters["all"], "1")
	deleted, reclaimed := s.engine.PruneVolumes(all, filters["label"])
	writeJSON(w, http.StatusOK, map[string]any{"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed})
}
