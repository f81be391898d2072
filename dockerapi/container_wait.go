package dockerapi

import (
	"fmt"
	"net/http"
)

// waitContainer is `docker wait` and the wait behind `docker run`: it
// answers once the container has exited ("removed": once it is gone
// too). The status line goes out at once: the CLI starts waiting before
// it starts the container.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	code, err := s.engine.Wait(r.Context(), c.ID, r.URL.Query().Get("condition") == "removed")
	if err != nil {
		return // the client went away
	}
	fmt.Fprintf(w, "{\"StatusCode\":%d,\"Error\":null}\n", code)
}
