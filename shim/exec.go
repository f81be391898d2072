package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/oci/specjson"
)

// execSync runs args in the container as the container's own process runs
// (its env, user, cwd, capabilities), through the runtime's "exec", and
// returns the exit code and output. At the timeout the process is killed.
func (s *server) execSync(ctx context.Context, args []string, timeout time.Duration) (*ExecResult, error) {
	if len(args) == 0 {
		return nil, errors.New("exec: no command")
	}
	select {
	case <-s.exited:
		return nil, errors.New("exec: the container is not running")
	default:
	}
	if s.runtimeIsOurs() {
		p, err := s.execProcess(Request{Args: args})
		if err != nil {
			return nil, err
		}
		res, err := s.execDirect(ctx, p, timeout)
		if !errors.Is(err, linux.ErrSeccompNeedsCgo) {
			return res, err
		}
	}
	dir, procFile, pidFile, err := s.prepareExec(Request{Args: args})
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	cmd := exec.Command(s.rt.Path, "--root", s.rt.Root, "exec", "--process", procFile, "--pid-file", pidFile, s.cfg.ID)
	var stdout, stderr boundedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := s.reaper.start(cmd); err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.reaper.wait(cmd) }()
	err, timedOut, ctxErr := awaitExec(ctx, timeout, done, func() { killExec(pidFile, cmd) })
	if ctxErr != nil {
		return nil, ctxErr
	}
	res := &ExecResult{TimedOut: timedOut}
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = exitErrorCode(ee)
	default:
		return nil, fmt.Errorf("exec: %w", err)
	}
	if _, statErr := os.Stat(pidFile); statErr != nil && res.ExitCode != 0 && !res.TimedOut {
		// No pid file: the runtime failed before the process started; its
		// stderr says why.
		return nil, fmt.Errorf("exec %s: %s", args[0], strings.TrimSpace(string(res.Stderr)))
	}
	return res, nil
}

// prepareExec writes, in a fresh directory, the process an exec runs (see
// execProcess). It returns the directory, the process file and the pid file.
func (s *server) prepareExec(req Request) (dir, procFile, pidFile string, err error) {
	p, err := s.execProcess(req)
	if err != nil {
		return "", "", "", err
	}
	if dir, err = os.MkdirTemp(s.dir, "exec-"); err != nil {
		return "", "", "", err
	}
	procFile, pidFile = filepath.Join(dir, "process.json"), filepath.Join(dir, "pid")
	pb, _ := (*specjson.Process)(p).MarshalJSON()
	if err := os.WriteFile(procFile, pb, 0o600); err != nil {
		os.RemoveAll(dir)
		return "", "", "", err
	}
	return dir, procFile, pidFile, nil
}

// execProcess is the process an exec runs: the container's own (env, user,
// cwd, capabilities) with the request's args, env, cwd and user and, maybe,
// a terminal.
func (s *server) execProcess(req Request) (*specs.Process, error) {
	args, tty, size := req.Args, req.Tty, req.Size
	base, err := s.containerProcess()
	if err != nil {
		return nil, err
	}
	p := *base
	p.Args = args
	p.Terminal = tty
	p.ConsoleSize = nil
	if tty && size != nil {
		p.ConsoleSize = &specs.Box{Height: uint(size.Height), Width: uint(size.Width)}
	}
	p.OOMScoreAdj = nil // the container's already applies
	p.Env = overEnv(p.Env, req.Env)
	if req.Cwd != "" {
		p.Cwd = req.Cwd
	}
	if u := req.User; u != nil {
		p.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	}
	return &p, nil
}

// containerProcess is the container's process as its bundle gives it.
func (s *server) containerProcess() (*specs.Process, error) {
	s.processMu.Lock()
	defer s.processMu.Unlock()
	if s.process != nil {
		return s.process, nil
	}
	path := filepath.Join(s.cfg.Bundle, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("exec: read bundle config: %w", err)
	}
	// specjson: encoding/json would build its tables for the whole spec
	// in each shim, for its first exec (~1.5 ms).
	var spec specs.Spec
	if err := (*specjson.Spec)(&spec).UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("exec: bundle config %s: %w", path, err)
	}
	if spec.Process == nil {
		return nil, fmt.Errorf("exec: bundle config %s has no process", path)
	}
	s.process = spec.Process
	return s.process, nil
}

// overEnv sets each KEY=VALUE of extra in env, in place of the same key.
func overEnv(env, extra []string) []string {
	env = slices.Clone(env)
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		env = slices.DeleteFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		env = append(env, kv)
	}
	return env
}

// awaitExec waits for an exec's process to end (done delivers how), killing
// it at the timeout (0: none), which timedOut then says, or when ctx ends,
// which ctxErr then says.
func awaitExec[T any](ctx context.Context, timeout time.Duration, done <-chan T, kill func()) (end T, timedOut bool, ctxErr error) {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	select {
	case end = <-done:
	case <-deadline:
		kill()
		return <-done, true, nil
	case <-ctx.Done():
		kill()
		<-done
		return end, false, ctx.Err()
	}
	return end, false, nil
}

// killExec kills the exec'd process (by its pid file) and the runtime's exec.
// The process is signalled only while it is still the runtime's child (or,
// the runtime gone, the shim's): once reaped, its pid may be another's.
func killExec(pidFile string, cmd *exec.Cmd) {
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			_ = linux.SignalChildOf(pid, unix.SIGKILL, cmd.Process.Pid, os.Getpid())
		}
	}
	_ = cmd.Process.Kill()
}

// boundedBuffer keeps the first MaxExecOutput bytes written to it.
type boundedBuffer struct {
	b []byte
}

func (w *boundedBuffer) Write(p []byte) (int, error) {
	if room := MaxExecOutput - len(w.b); room > 0 {
		if len(p) > room {
			w.b = append(w.b, p[:room]...)
		} else {
			w.b = append(w.b, p...)
		}
	}
	return len(p), nil // keep draining, or the process blocks on a full pipe
}

func (w *boundedBuffer) Bytes() []byte { return w.b }

var _ io.Writer = (*boundedBuffer)(nil)
