package dockerapi

import (
	"fmt"
	"net/http"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// attachContainer is the attach behind `docker run` without -d and `docker
// attach`: the connection is hijacked and carries the container's output
// as Docker's multiplexed stream until it exits. The output comes from the
// container's log, so that the attach the CLI makes before it starts the
// container misses nothing. Stdin is not carried yet.
func (s *Server) attachContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if boolParam(r, "stdin") && c.Annotations[annotationStdin] == "true" {
		writeError(w, fmt.Errorf("attaching stdin is not supported yet (run without -i): %w", errdefs.ErrUnimplemented))
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, fmt.Errorf("connection cannot be hijacked"))
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	status := "HTTP/1.1 200 OK\r\n"
	if r.Header.Get("Upgrade") == "tcp" {
		status = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	fmt.Fprintf(buf, "%sContent-Type: application/vnd.docker.multiplexed-stream\r\n\r\n", status)
	_ = buf.Flush()
	o := logOpts{stdout: boolParam(r, "stdout"), stderr: boolParam(r, "stderr"), follow: boolParam(r, "stream"), tail: -1}
	if !boolParam(r, "logs") && !c.StartedAt.IsZero() {
		o.since = c.StartedAt // a late attach: only what comes from now
	}
	s.streamLog(r.Context(), buf, func() { _ = buf.Flush() }, c, o)
}
