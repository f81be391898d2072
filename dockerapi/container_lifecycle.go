package dockerapi

import "net/http"

// startContainer is `docker start` (and the second half of `docker run`):
// 304 when it already runs.
func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.container(w, r); ok {
		answer(w, s.engine.Start(r.Context(), c), http.StatusNoContent)
	}
}

// stopContainer is `docker stop [-t SECONDS]`: 304 when it is not running.
func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.container(w, r); ok {
		answer(w, s.engine.Stop(r.Context(), c, intParam(r, "t")), http.StatusNoContent)
	}
}

// restartContainer is `docker restart`: stop (if running), then start again.
func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.container(w, r); ok {
		answer(w, s.engine.Restart(r.Context(), c, intParam(r, "t")), http.StatusNoContent)
	}
}

// killContainer is `docker kill [-s SIGNAL]`.
func (s *Server) killContainer(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.container(w, r); ok {
		answer(w, s.engine.Kill(r.Context(), c, r.URL.Query().Get("signal")), http.StatusNoContent)
	}
}

// pauseContainer and unpauseContainer are `docker pause` and `docker unpause`.
func (s *Server) pauseContainer(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.container(w, r); ok {
		answer(w, s.engine.Pause(r.Context(), c), http.StatusNoContent)
	}
}

func (s *Server) unpauseContainer(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.container(w, r); ok {
		answer(w, s.engine.Unpause(r.Context(), c), http.StatusNoContent)
	}
}

// removeContainer is `docker rm [-f] [-v]`.
func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.container(w, r); ok {
		answer(w, s.engine.Remove(r.Context(), c, boolParam(r, "force"), boolParam(r, "v")), http.StatusNoContent)
	}
}
