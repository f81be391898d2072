package engine

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// The exec instances of `docker exec`: made by one call, started by
// another, inspected for their exit code by a third. They live in memory,
// as dockerd's do, and are dropped a while after they end.

// Size is a terminal's size.
type Size = containers.Size

// Streams are the client's ends of an exec's or an attach's stdio (nil: not attached).
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ExecConfig is `docker exec`'s request.
type ExecConfig struct {
	Cmd                                     []string
	AttachStdin, AttachStdout, AttachStderr bool
	Tty                                     bool
	Env                                     []string
	User, WorkingDir                        string
	Privileged                              bool
	ConsoleSize                             *[2]uint // height, width
}

// Exec is an exec instance as inspect shows it.
type Exec struct {
	ID, Container string
	Config        ExecConfig
	Running       bool
	// ExitCode is nil until it has ended.
	ExitCode *int32
}

type execs struct {
	mu sync.Mutex
	m  map[string]*execInst
}

type execInst struct {
	id, container string
	cfg           ExecConfig
	// user is -u, resolved in the container.
	user *containers.ExecUser
	// resize carries the terminal's sizes to the running exec, the newest
	// first: a size sent before the exec starts is kept for it.
	resize   chan Size
	running  bool
	done     bool
	exitCode int32
	ended    time.Time
}

func (x *execInst) view() Exec {
	v := Exec{ID: x.id, Container: x.container, Config: x.cfg, Running: x.running}
	if x.done {
		code := x.exitCode
		v.ExitCode = &code
	}
	return v
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
	e.m[x.id] = x
}

func (e *execs) get(id string) (*execInst, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[id]; ok {
		return x, nil
	}
	return nil, fmt.Errorf("No such exec instance: %s: %w", id, errdefs.ErrNotFound)
}

// CreateExec makes an exec instance in running container c.
func (e *Engine) CreateExec(c store.Container, cfg ExecConfig) (string, error) {
	switch {
	case len(cfg.Cmd) == 0:
		return "", fmt.Errorf("no exec command specified: %w", errdefs.ErrInvalidArgument)
	case cfg.Privileged:
		return "", fmt.Errorf("exec --privileged is not supported: %w", errdefs.ErrUnimplemented)
	case cfg.WorkingDir != "" && !strings.HasPrefix(cfg.WorkingDir, "/"):
		return "", fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path: %w", cfg.WorkingDir, errdefs.ErrInvalidArgument)
	case c.State != store.ContainerRunning:
		return "", fmt.Errorf("Container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	for _, kv := range cfg.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "" {
			return "", fmt.Errorf("invalid environment variable: %s: %w", kv, errdefs.ErrInvalidArgument)
		}
	}
	x := &execInst{id: randomID(), container: c.ID, cfg: cfg, resize: make(chan Size, 1)}
	if cfg.User != "" {
		user, err := e.containers.ExecUser(c.ID, cfg.User)
		if err != nil {
			return "", err
		}
		x.user = user
	}
	if cs := cfg.ConsoleSize; cs != nil && cs[0] > 0 && cs[1] > 0 {
		x.resize <- Size{Height: uint16(cs[0]), Width: uint16(cs[1])}
	}
	e.execs.add(x)
	return x.id, nil
}

// InspectExec is exec instance id.
func (e *Engine) InspectExec(id string) (Exec, error) {
	x, err := e.execs.get(id)
	if err != nil {
		return Exec{}, err
	}
	e.execs.mu.Lock()
	defer e.execs.mu.Unlock()
	return x.view(), nil
}

// StartExec claims exec instance id (an instance starts once) and returns
// it with the function that runs it over the client's streams until it
// ends; its exit code is kept for inspect.
func (e *Engine) StartExec(id string) (Exec, func(context.Context, Streams), error) {
	x, err := e.execs.get(id)
	if err != nil {
		return Exec{}, nil, err
	}
	e.execs.mu.Lock()
	defer e.execs.mu.Unlock()
	if x.running || x.done {
		return Exec{}, nil, fmt.Errorf("exec %s has already been started: %w", x.id, errdefs.ErrFailedPrecondition)
	}
	x.running = true
	run := func(ctx context.Context, s Streams) {
		o := containers.StreamOpts{Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr,
			Args: x.cfg.Cmd, Tty: x.cfg.Tty, Env: x.cfg.Env, Cwd: x.cfg.WorkingDir, User: x.user}
		if x.cfg.Tty {
			o.Resize = x.resize
		}
		began := time.Now()
		code, err := e.containers.ExecStream(ctx, x.container, o)
		e.log.Debug("docker exec", "exec", x.id, "container", x.container, "took", time.Since(began), "code", code)
		if err != nil {
			code = 126
			if o.Stderr != nil {
				fmt.Fprintf(o.Stderr, "exec: %v\n", err)
			}
		}
		e.execs.mu.Lock()
		x.running, x.done, x.exitCode, x.ended = false, true, code, time.Now()
		e.execs.mu.Unlock()
	}
	return x.view(), run, nil
}

// ResizeExec is the client telling the exec's terminal size (at start and
// on SIGWINCH): the newest size replaces one not yet taken.
func (e *Engine) ResizeExec(id string, sz Size) error {
	x, err := e.execs.get(id)
	if err != nil {
		return err
	}
	sendLatest(x.resize, sz)
	return nil
}

// sendLatest puts sz on ch (of capacity 1), dropping a size not yet taken.
func sendLatest(ch chan Size, sz Size) {
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
