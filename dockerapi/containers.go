package dockerapi

import (
	"net/http"

	"github.com/berth-runtime/berth/internal/store"
)

// The container routes, each handled in the file of its kind of request:
// container_create.go, container_list.go, container_inspect.go,
// container_lifecycle.go, container_wait.go, container_update.go,
// container_logs.go, container_attach.go, container_stats.go,
// container_files.go.
func (s *Server) routeContainers() {
	s.mux.HandleFunc("POST /containers/create", s.createContainer)
	s.mux.HandleFunc("GET /containers/json", s.listContainers)
	s.mux.HandleFunc("GET /containers/{id}/json", s.inspectContainer)
	s.mux.HandleFunc("POST /containers/{id}/start", s.startContainer)
	s.mux.HandleFunc("POST /containers/{id}/stop", s.stopContainer)
	s.mux.HandleFunc("POST /containers/{id}/restart", s.restartContainer)
	s.mux.HandleFunc("POST /containers/{id}/kill", s.killContainer)
	s.mux.HandleFunc("POST /containers/{id}/pause", s.pauseContainer)
	s.mux.HandleFunc("POST /containers/{id}/unpause", s.unpauseContainer)
	s.mux.HandleFunc("POST /containers/{id}/wait", s.waitContainer)
	s.mux.HandleFunc("DELETE /containers/{id}", s.removeContainer)
	s.mux.HandleFunc("GET /containers/{id}/logs", s.containerLogs)
	s.mux.HandleFunc("POST /containers/{id}/attach", s.attachContainer)
	s.mux.HandleFunc("POST /containers/{id}/resize", s.resizeContainer)
	s.mux.HandleFunc("POST /containers/{id}/rename", s.renameContainer)
	s.mux.HandleFunc("POST /containers/{id}/update", s.updateContainer)
	s.mux.HandleFunc("POST /containers/prune", s.pruneContainers)
	s.mux.HandleFunc("GET /containers/{id}/stats", s.containerStats)
	s.mux.HandleFunc("GET /containers/{id}/top", s.containerTop)
	s.mux.HandleFunc("GET /containers/{id}/changes", s.containerChanges)
	s.mux.HandleFunc("GET /containers/{id}/export", s.exportContainer)
	s.mux.HandleFunc("HEAD /containers/{id}/archive", s.statArchive)
	s.mux.HandleFunc("GET /containers/{id}/archive", s.getArchive)
	s.mux.HandleFunc("PUT /containers/{id}/archive", s.putArchive)
	s.mux.HandleFunc("POST /commit", s.commitContainer)
}

// container finds the container the request's path names, answering
// Docker's 404 when there is none.
func (s *Server) container(w http.ResponseWriter, r *http.Request) (store.Container, bool) {
	c, err := s.engine.Lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return c, false
	}
	return c, true
}
