package dockerapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/berth-runtime/berth/engine"
	"github.com/berth-runtime/berth/internal/store"
)

// attachContainer is the attach behind `docker run` without -d and `docker
// attach`: the connection is hijacked and carries the container's output
// as Docker's multiplexed stream until it exits. The output comes from the
// container's log, so that the attach the CLI makes before it starts the
// container misses nothing. Stdin (`-i`) goes to the container through the
// shim once it runs; the client's end of it ends the container's (StdinOnce).
func (s *Server) attachContainer(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	withStdin := boolParam(r, "stdin")
	if err := s.engine.CheckAttach(c, withStdin); err != nil {
		writeError(w, err)
		return
	}
	if engine.ConfigOf(c).Tty {
		s.attachTerminal(w, r, c, withStdin)
		return
	}
	conn, buf, ok := hijack(w, r, "application/vnd.docker.multiplexed-stream")
	if !ok {
		return
	}
	defer conn.Close()
	o := engine.LogOptions{Stdout: boolParam(r, "stdout"), Stderr: boolParam(r, "stderr"), Follow: boolParam(r, "stream"), Tail: -1}
	if !boolParam(r, "logs") && !c.StartedAt.IsZero() {
		o.Since = c.StartedAt // a late attach: only what comes from now
	}
	// Not the request's context: the server ends it when the client closes
	// its side of the connection, which `docker run -i` does at the end of
	// its stdin, while the output is still to come. The stream ends when the
	// container does, or when a write to the client fails.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	if withStdin {
		go s.engine.AttachStdin(ctx, c, buf.Reader)
	}
	s.engine.Logs(ctx, c, o, frames(failWriter{w: buf, fail: cancel}), func() {
		if buf.Flush() != nil {
			cancel()
		}
	})
}

// resizeContainer is the client's terminal size for an attach (at start
// and on SIGWINCH).
func (s *Server) resizeContainer(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	sz, err := sizeParams(r)
	if err != nil {
		writeError(w, err)
		return
	}
	s.engine.Resize(c, sz)
	w.WriteHeader(http.StatusOK)
}

// attachTerminal is attach for a container with a terminal: a raw stream
// straight from the shim's attach (the terminal's bytes as they come, the
// prompt without its newline too), stdin through the detach keys, resizes.
// The shim has taken the attach before the client hears 101, so that the
// start the client sends next loses no output.
func (s *Server) attachTerminal(w http.ResponseWriter, r *http.Request, c store.Container, withStdin bool) {
	keys, err := parseDetachKeys(r.URL.Query().Get("detachKeys"))
	if err != nil {
		writeError(w, err)
		return
	}
	conn, buf, ok := takeOver(w)
	if !ok {
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	ready := make(chan struct{})
	var once sync.Once
	var streams engine.Streams
	if boolParam(r, "stdout") || boolParam(r, "stderr") {
		streams.Stdout = conn
	}
	var stdin *io.PipeWriter
	if withStdin {
		var pr *io.PipeReader
		pr, stdin = io.Pipe()
		streams.Stdin = pr
	}
	done := make(chan error, 1)
	go func() {
		done <- s.engine.AttachTerminal(ctx, c, streams, func() { once.Do(func() { close(ready) }) })
	}()
	select {
	case <-ready:
	case err := <-done:
		respondRaw(buf, http.StatusConflict, err)
		return
	case <-time.After(10 * time.Second):
		respondRaw(buf, http.StatusGatewayTimeout, errors.New("the container's shim did not take the attach"))
		return
	}
	if err := writeUpgrade(buf, r, "application/vnd.docker.raw-stream"); err != nil {
		return
	}
	if withStdin {
		go func() {
			// The detach keys or the end of the client's input end the
			// attach, not the container's input: a terminal's stays open
			// for the next attach, as dockerd keeps it (only a container
			// without a terminal sees its stdin end with the client's).
			_, _ = io.Copy(stdin, &detachReader{r: buf.Reader, keys: keys})
			cancel()
		}()
	}
	<-done
	if stdin != nil {
		stdin.CloseWithError(errDetached) // the shim's connection is closed by now: nothing more is sent
	}
}
