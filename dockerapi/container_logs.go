package dockerapi

import (
	"net/http"
	"strconv"

	"github.com/berth-runtime/berth/engine"
)

// containerLogs is `docker logs`: the container's log as Docker's stream,
// multiplexed frames (8-byte headers), the containers having no terminal.
// follow keeps reading until the container has exited.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	o := engine.LogOptions{Stdout: boolParam(r, "stdout"), Stderr: boolParam(r, "stderr"), Follow: boolParam(r, "follow"),
		Timestamps: boolParam(r, "timestamps"), Since: unixParam(q.Get("since")), Until: unixParam(q.Get("until")), Tail: -1}
	if n, err := strconv.Atoi(q.Get("tail")); err == nil && n >= 0 {
		o.Tail = n
	}
	w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	w.WriteHeader(http.StatusOK)
	s.engine.Logs(r.Context(), c, o, frames(w), flusher(w))
}
