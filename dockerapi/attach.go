package dockerapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// attachContainer is the attach behind `docker run` without -d and `docker
// attach`: the connection is hijacked and carries the container's output
// as Docker's multiplexed stream until it exits. The output comes from the
// container's log, so that the attach the CLI makes before it starts the
// container misses nothing. Stdin (`-i`) goes to the container through the
// shim once it runs; the client's end of it ends the container's (StdinOnce).
func (s *Server) attachContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	withStdin := boolParam(r, "stdin")
	if withStdin && c.Annotations[annotationStdin] != "true" {
		writeError(w, fmt.Errorf("container %s was not created with stdin open (-i): %w", c.Name, errdefs.ErrFailedPrecondition))
		return
	}
	var b createBody
	if json.Unmarshal(c.Config, &b) == nil && b.Tty {
		s.attachTerminal(w, r, c, withStdin)
		return
	}
	conn, buf, ok := hijack(w, r, "application/vnd.docker.multiplexed-stream")
	if !ok {
		return
	}
	defer conn.Close()
	o := logOpts{stdout: boolParam(r, "stdout"), stderr: boolParam(r, "stderr"), follow: boolParam(r, "stream"), tail: -1}
	if !boolParam(r, "logs") && !c.StartedAt.IsZero() {
		o.since = c.StartedAt // a late attach: only what comes from now
	}
	// Not the request's context: the server ends it when the client closes
	// its side of the connection, which `docker run -i` does at the end of
	// its stdin, while the output is still to come. The stream ends when the
	// container does, or when a write to the client fails.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	out := failWriter{w: buf, fail: cancel}
	if withStdin {
		go s.attachStdin(ctx, c, buf.Reader)
	}
	s.streamLog(ctx, out, func() {
		if buf.Flush() != nil {
			cancel()
		}
	}, c, o)
}

// failWriter calls fail when a write fails (the client has gone).
type failWriter struct {
	w    io.Writer
	fail func()
}

func (f failWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		f.fail()
	}
	return n, err
}

// attachStdin carries the client's stdin to the container once it runs.
func (s *Server) attachStdin(ctx context.Context, c store.Container, in io.Reader) {
	rec, gone, err := s.waitFor(ctx, c.ID, func(rec store.Container, gone bool) bool {
		return gone || rec.State != store.ContainerCreated
	})
	if err != nil || gone || rec.State != store.ContainerRunning {
		return
	}
	if _, err := s.containers.Attach(ctx, c.ID, containers.StreamOpts{Stdin: in}); err != nil {
		s.log.Debug("docker attach: stdin", "container", c.ID, "error", err)
	}
}

// hijack takes the connection over for a stream, answering 101 to a client
// that asked to upgrade (the CLI does) and 200 to one that did not.
func hijack(w http.ResponseWriter, r *http.Request, contentType string) (net.Conn, *bufio.ReadWriter, bool) {
	conn, buf, ok := takeOver(w)
	if !ok {
		return nil, nil, false
	}
	if err := writeUpgrade(buf, r, contentType); err != nil {
		conn.Close()
		return nil, nil, false
	}
	return conn, buf, true
}

// takeOver hijacks the connection, answering nothing yet.
func takeOver(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, fmt.Errorf("connection cannot be hijacked"))
		return nil, nil, false
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return nil, nil, false
	}
	return conn, buf, true
}

// writeUpgrade answers a hijacked request: the stream begins.
func writeUpgrade(buf *bufio.ReadWriter, r *http.Request, contentType string) error {
	status := "HTTP/1.1 200 OK\r\n"
	if r.Header.Get("Upgrade") == "tcp" {
		status = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	fmt.Fprintf(buf, "%sContent-Type: %s\r\n\r\n", status, contentType)
	return buf.Flush()
}
