package dockerapi

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// execs are the exec instances of `docker exec`: made by one call, started
// by another, inspected for their exit code by a third. They live in
// memory, as dockerd's do, and are dropped a while after they end.
type execs struct {
	mu sync.Mutex
	m  map[string]*execInst
}

type execInst struct {
	ID, Container string
	Cmd           []string
	Stdin, Tty    bool
	Stdout        bool
	Stderr        bool
	// Env, WorkingDir and User (resolved in the container) are -e, -w, -u.
	Env        []string
	WorkingDir string
	User       *containers.ExecUser
	// resize carries the terminal's sizes to the running exec, the newest
	// first: a size sent before the exec starts is kept for it.
	resize   chan containers.Size
	running  bool
	done     bool
	exitCode int32
	ended    time.Time
}

func (e *execs) add(x *execInst) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]*execInst{}
	}
	for id, o := range e.m {
		if o.done && time.Since(o.ended) > 5*time.Minute {
			delete(e.m, id)
		}
	}
	e.m[x.ID] = x
}

func (e *execs) get(id string) (*execInst, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[id]; ok {
		return x, nil
	}
	return nil, fmt.Errorf("No such exec instance: %s: %w", id, errdefs.ErrNotFound)
}

func (s *Server) routeExec() {
	s.mux.HandleFunc("POST /containers/{id}/exec", s.createExec)
	s.mux.HandleFunc("POST /exec/{id}/start", s.startExec)
	s.mux.HandleFunc("GET /exec/{id}/json", s.inspectExec)
	s.mux.HandleFunc("POST /exec/{id}/resize", s.resizeExec)
}

func (s *Server) createExec(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	var b struct {
		Cmd                                     []string
		AttachStdin, AttachStdout, AttachStderr bool
		Tty                                     bool
		Env                                     []string
		User, WorkingDir                        string
		Privileged                              bool
		ConsoleSize                             *[2]uint // height, width
	}
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	switch {
	case len(b.Cmd) == 0:
		writeError(w, fmt.Errorf("no exec command specified: %w", errdefs.ErrInvalidArgument))
		return
	case b.Privileged:
		writeError(w, fmt.Errorf("exec --privileged is not supported: %w", errdefs.ErrUnimplemented))
		return
	case b.WorkingDir != "" && !strings.HasPrefix(b.WorkingDir, "/"):
		writeError(w, fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path: %w", b.WorkingDir, errdefs.ErrInvalidArgument))
		return
	case c.State != store.ContainerRunning:
		writeError(w, fmt.Errorf("Container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition))
		return
	}
	for _, kv := range b.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "" {
			writeError(w, fmt.Errorf("invalid environment variable: %s: %w", kv, errdefs.ErrInvalidArgument))
			return
		}
	}
	var user *containers.ExecUser
	if b.User != "" {
		if user, err = s.containers.ExecUser(c.ID, b.User); err != nil {
			writeError(w, err)
			return
		}
	}
	var id [32]byte
	_, _ = rand.Read(id[:])
	x := &execInst{ID: hex.EncodeToString(id[:]), Container: c.ID, Cmd: b.Cmd, Stdin: b.AttachStdin, Tty: b.Tty,
		Stdout: b.AttachStdout, Stderr: b.AttachStderr, Env: b.Env, WorkingDir: b.WorkingDir, User: user,
		resize: make(chan containers.Size, 1)}
	if cs := b.ConsoleSize; cs != nil && cs[0] > 0 && cs[1] > 0 {
		x.resize <- containers.Size{Height: uint16(cs[0]), Width: uint16(cs[1])}
	}
	s.execs.add(x)
	writeJSON(w, http.StatusCreated, map[string]string{"Id": x.ID})
}

// startExec runs the exec: detached, in the background; otherwise over the
// hijacked connection, its output as Docker's multiplexed stream (raw with
// a terminal) and its stdin from the connection.
func (s *Server) startExec(w http.ResponseWriter, r *http.Request) {
	x, err := s.execs.get(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	var b struct{ Detach, Tty bool }
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	s.execs.mu.Lock()
	if x.running || x.done {
		s.execs.mu.Unlock()
		writeError(w, fmt.Errorf("exec %s has already been started: %w", x.ID, errdefs.ErrFailedPrecondition))
		return
	}
	x.running = true
	s.execs.mu.Unlock()
	run := func(ctx context.Context, o containers.StreamOpts) {
		o.Args, o.Tty, o.Env, o.Cwd, o.User = x.Cmd, x.Tty, x.Env, x.WorkingDir, x.User
		if x.Tty {
			o.Resize = x.resize
		}
		began := time.Now()
		code, err := s.containers.ExecStream(ctx, x.Container, o)
		s.log.Debug("docker exec", "exec", x.ID, "container", x.Container, "took", time.Since(began), "code", code)
		if err != nil {
			code = 126
			if o.Stderr != nil {
				fmt.Fprintf(o.Stderr, "exec: %v\n", err)
			}
		}
		s.execs.mu.Lock()
		x.running, x.done, x.exitCode, x.ended = false, true, code, time.Now()
		s.execs.mu.Unlock()
	}
	if b.Detach {
		go run(context.Background(), containers.StreamOpts{})
		w.WriteHeader(http.StatusOK)
		return
	}
	ctype := "application/vnd.docker.multiplexed-stream"
	if x.Tty {
		ctype = "application/vnd.docker.raw-stream"
	}
	conn, buf, ok := hijack(w, r, ctype)
	if !ok {
		return
	}
	defer conn.Close()
	var mu sync.Mutex
	o := containers.StreamOpts{}
	out := func(stream byte) io.Writer {
		if x.Tty {
			return lockedWriter{&mu, conn}
		}
		return frameWriter{&mu, conn, stream}
	}
	if x.Stdout {
		o.Stdout = out(1)
	}
	if x.Stderr {
		o.Stderr = out(2)
	}
	if x.Stdin {
		o.Stdin = buf.Reader
	}
	run(context.WithoutCancel(r.Context()), o)
}

// resizeExec is the CLI telling the exec's terminal size (at start and on
// SIGWINCH): the newest size replaces one not yet taken.
func (s *Server) resizeExec(w http.ResponseWriter, r *http.Request) {
	x, err := s.execs.get(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	sz, err := sizeParams(r)
	if err != nil {
		writeError(w, err)
		return
	}
	sendLatest(x.resize, sz)
	w.WriteHeader(http.StatusOK)
}

// sendLatest puts sz on ch (of capacity 1), dropping a size not yet taken.
func sendLatest(ch chan containers.Size, sz containers.Size) {
	for {
		select {
		case ch <- sz:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

func (s *Server) inspectExec(w http.ResponseWriter, r *http.Request) {
	x, err := s.execs.get(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	s.execs.mu.Lock()
	defer s.execs.mu.Unlock()
	var code any
	if x.done {
		code = x.exitCode
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ID": x.ID, "ContainerID": x.Container, "Running": x.running, "ExitCode": code, "Pid": 0,
		"OpenStdin": x.Stdin, "OpenStdout": x.Stdout, "OpenStderr": x.Stderr,
		"ProcessConfig": map[string]any{"entrypoint": x.Cmd[0], "arguments": x.Cmd[1:], "tty": x.Tty},
	})
}

// frameWriter writes Docker's multiplexed frames: an 8-byte header (the
// stream, then the length) before each write.
type frameWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte
}

func (f frameWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var hdr [8]byte
	hdr[0] = f.stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	if _, err := f.w.Write(hdr[:]); err != nil {
		return 0, err
	}
	return f.w.Write(p)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
