package dockerapi

import (
	"net/http"
	"strings"

	"github.com/berth-runtime/berth/engine"
)

// renameContainer is `docker rename OLD NEW`.
func (s *Server) renameContainer(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.container(w, r); ok {
		answer(w, s.engine.Rename(c, r.URL.Query().Get("name")), http.StatusNoContent)
	}
}

// updateContainer is `docker update`: cgroup limits and the restart policy.
func (s *Server) updateContainer(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	var u engine.UpdateConfig
	if err := decodeBody(r, &u); err != nil {
		writeError(w, err)
		return
	}
	if err := s.engine.Update(r.Context(), c, u); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"Warnings": []string{}})
}

// pruneContainers is `docker container prune` (filters: until, label).
func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	until := unixParam(strings.Join(filters["until"], ""))
	deleted, reclaimed, err := s.engine.Prune(r.Context(), until, filters["label"])
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed})
}
