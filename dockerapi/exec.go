package dockerapi

import (
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/berth-runtime/berth/engine"
)

// `docker exec`: create, start (detached, or over the hijacked
// connection), resize, inspect.

func (s *Server) routeExec() {
	s.mux.HandleFunc("POST /containers/{id}/exec", s.createExec)
	s.mux.HandleFunc("POST /exec/{id}/start", s.startExec)
	s.mux.HandleFunc("GET /exec/{id}/json", s.inspectExec)
	s.mux.HandleFunc("POST /exec/{id}/resize", s.resizeExec)
}

func (s *Server) createExec(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	var b engine.ExecConfig
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	id, err := s.engine.CreateExec(c, b)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"Id": id})
}

// startExec runs the exec: detached, in the background; otherwise over the
// hijacked connection, its output as Docker's multiplexed stream (raw with
// a terminal) and its stdin from the connection.
func (s *Server) startExec(w http.ResponseWriter, r *http.Request) {
	var b struct{ Detach, Tty bool }
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	x, run, err := s.engine.StartExec(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if b.Detach {
		go run(context.Background(), engine.Streams{})
		w.WriteHeader(http.StatusOK)
		return
	}
	ctype := "application/vnd.docker.multiplexed-stream"
	if x.Config.Tty {
		ctype = "application/vnd.docker.raw-stream"
	}
	conn, buf, ok := hijack(w, r, ctype)
	if !ok {
		return
	}
	defer conn.Close()
	var mu sync.Mutex
	var st engine.Streams
	out := func(stream byte) io.Writer {
		if x.Config.Tty {
			return lockedWriter{&mu, conn}
		}
		return frameWriter{&mu, conn, stream}
	}
	if x.Config.AttachStdout {
		st.Stdout = out(1)
	}
	if x.Config.AttachStderr {
		st.Stderr = out(2)
	}
	if x.Config.AttachStdin {
		st.Stdin = buf.Reader
	}
	run(context.WithoutCancel(r.Context()), st)
}

// resizeExec is the CLI telling the exec's terminal size.
func (s *Server) resizeExec(w http.ResponseWriter, r *http.Request) {
	sz, err := sizeParams(r)
	if err != nil {
		writeError(w, err)
		return
	}
	answer(w, s.engine.ResizeExec(r.PathValue("id"), sz), http.StatusOK)
}

func (s *Server) inspectExec(w http.ResponseWriter, r *http.Request) {
	x, err := s.engine.InspectExec(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	var code any
	if x.ExitCode != nil {
		code = *x.ExitCode
	}
	cfg := x.Config
	writeJSON(w, http.StatusOK, map[string]any{
		"ID": x.ID, "ContainerID": x.Container, "Running": x.Running, "ExitCode": code, "Pid": 0,
		"OpenStdin": cfg.AttachStdin, "OpenStdout": cfg.AttachStdout, "OpenStderr": cfg.AttachStderr,
		"ProcessConfig": map[string]any{"entrypoint": cfg.Cmd[0], "arguments": cfg.Cmd[1:], "tty": cfg.Tty},
	})
}
