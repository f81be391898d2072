package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/oci/runtimecli"
)

// Run is the shim process: it creates the container, reports readiness (or
// the failure) on ready, and serves until the container is deleted.
func Run(ctx context.Context, dir string, ready *os.File) error {
	s, err := newServer(ctx, dir)
	if err != nil {
		fmt.Fprintf(ready, "error: %v", err)
		ready.Close()
		return err
	}
	fmt.Fprint(ready, "ok")
	ready.Close()
	return s.serve(ctx)
}

type server struct {
	dir     string
	cfg     Config
	rt      runtimecli.Runtime
	log     *logWriter
	ln      *net.UnixListener
	copying sync.WaitGroup
	reaper  *reaper

	// memCgroup is the container's memory cgroup, read for OOM kills at exit.
	memCgroup string
	// attached fans output to attach clients; stdin is the main process's
	// stdin (a pipe, or the pty master with a terminal), nil without one.
	attached  *hub
	master    *os.File
	stdinMu   sync.Mutex
	stdin     *os.File
	stdinUsed bool // for StdinOnce

	// process is the container's own process (from the bundle, which does
	// not change while the container lives), read at the first exec.
	processMu sync.Mutex
	process   *specs.Process

	mu      sync.Mutex
	pid     int
	started time.Time
	exit    *Exit
	exited  chan struct{} // closed once exit is set
	done    chan struct{} // closed after delete: the shim ends
}

func newServer(ctx context.Context, dir string) (*server, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("read shim config: %w", err)
	}
	s := &server{dir: dir, exited: make(chan struct{}), done: make(chan struct{}), reaper: newReaper(), attached: newHub()}
	if err := json.Unmarshal(b, &s.cfg); err != nil {
		return nil, fmt.Errorf("parse %s: %w", ConfigFile, err)
	}
	s.rt = runtimecli.Runtime{Path: s.cfg.Runtime, Root: s.cfg.RuntimeRoot, Log: filepath.Join(dir, RuntimeLog), Run: s.reaper.run, Env: s.cfg.RuntimeEnv}

	// Adopt the container's init when "create" exits, so we can reap it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become subreaper: %w", err)
	}
	if s.log, err = openLog(s.cfg.LogPath); err != nil {
		return nil, fmt.Errorf("open container log %s: %w", s.cfg.LogPath, err)
	}
	fw, err := listenForwards(s.cfg.Forwards)
	if err != nil {
		s.log.Close()
		return nil, err
	}
	if err := s.create(ctx); err != nil {
		fw.close()
		s.log.Close()
		return nil, err
	}
	_ = os.Remove(s.cfg.Socket)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.cfg.Socket, Net: "unix"})
	if err != nil {
		fw.close()
		_ = s.rt.Delete(ctx, s.cfg.ID, true)
		return nil, fmt.Errorf("listen on %s: %w", s.cfg.Socket, err)
	}
	s.ln = ln
	go fw.serve(s.cfg.Forwards, s.done)
	go s.reap()
	go s.reapOrphans()
	return s, nil
}

func (s *server) create(ctx context.Context) error {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	pidFile := filepath.Join(s.dir, PidFile)
	var (
		outputs               []*os.File // read ends: stdout, stderr (or the pty master)
		closeAfter            []*os.File // ends only the container keeps
		stdin, stdout, stderr = devnull, devnull, devnull
		consolePath           string
		console               *consoleListener
		masterCh              = make(chan error, 1)
	)
	if s.cfg.Tty {
		if console, err = newConsoleListener(s.dir); err != nil {
			return err
		}
		defer console.close()
		consolePath = console.path()
		go func() {
			m, err := console.receive()
			s.master = m
			masterCh <- err
		}()
	} else {
		outR, outW, err := os.Pipe()
		if err != nil {
			return err
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			return err
		}
		outputs = []*os.File{outR, errR}
		stdout, stderr = outW, errW
		closeAfter = append(closeAfter, outW, errW)
		if s.cfg.Stdin {
			inR, inW, err := os.Pipe()
			if err != nil {
				return err
			}
			stdin, s.stdin = inR, inW
			closeAfter = append(closeAfter, inR)
		}
	}
	err = s.rt.Create(ctx, s.cfg.ID, s.cfg.Bundle, pidFile, consolePath, stdin, stdout, stderr)
	// Only the container holds its ends now: EOF means it and every
	// process sharing its stdio are gone.
	for _, f := range closeAfter {
		f.Close()
	}
	if err == nil && console != nil {
		select {
		case err = <-masterCh:
		case <-time.After(10 * time.Second):
			err = errors.New("the runtime sent no pty master to the console socket")
		}
		if err == nil {
			outputs = []*os.File{s.master}
			s.stdin = s.master
		}
	}
	if err != nil {
		for _, f := range outputs {
			f.Close()
		}
		_ = s.rt.Delete(context.WithoutCancel(ctx), s.cfg.ID, true)
		return err
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("read pid file: %w", err)
	}
	if s.pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		return fmt.Errorf("pid file %s: %w", pidFile, err)
	}
	s.reaper.own(s.pid) // reap() waits for it
	if s.memCgroup, err = linux.MemoryCgroupOf(s.pid); err != nil {
		slog.Warn("OOM kills will not be reported", slog.Any("error", err))
	}
	for i, f := range outputs {
		stream, typ := "stdout", byte(frameStdout)
		if i == 1 {
			stream, typ = "stderr", frameStderr
		}
		s.copying.Add(1)
		go func() {
			defer s.copying.Done()
			// The log gets every byte; attached clients a copy as it passes.
			s.log.copyStream(stream, io.TeeReader(f, s.attached.writer(typ)))
			if f != s.master {
				f.Close()
			}
		}()
	}
	return nil
}

// reap waits for the init and records its exit: first in the exit file, then
// for the callers waiting on the socket.
func (s *server) reap() {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(s.pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			slog.Error("wait for container init", slog.Int("pid", s.pid), slog.Any("error", err))
		}
		break
	}
	at := time.Now().UTC()
	// Let the log copiers drain, but not forever: a process outside the
	// container's PID namespace could hold its stdout open.
	drained := make(chan struct{})
	go func() { s.copying.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
	}
	e := &Exit{At: at, Reason: "Completed"}
	switch {
	case ws.Exited(), ws.Signaled():
		e.Code = exitCode(ws)
	default:
		e.Code = 255
	}
	if e.Code != 0 {
		e.Reason = "Error"
		if n, err := linux.OOMKills(s.memCgroup); err == nil && n > 0 {
			e.Reason = "OOMKilled"
		}
	}
	if err := writeJSONAtomic(filepath.Join(s.dir, ExitFile), e); err != nil {
		slog.Error("record exit", slog.Any("error", err))
	}
	s.mu.Lock()
	s.exit = e
	s.mu.Unlock()
	s.attached.exit(e.Code)
	close(s.exited)
}

// reapOrphans reaps adopted orphans whenever a child changes state.
func (s *server) reapOrphans() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD)
	for {
		select {
		case <-sigs:
			s.reaper.reapOrphans()
		case <-s.done:
			return
		}
	}
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// delete removes the container from the runtime, killing it if it still runs.
func (s *server) delete(ctx context.Context) error {
	if err := s.rt.Delete(ctx, s.cfg.ID, true); err != nil {
		return err
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		return errors.New("container init was not reaped 10s after delete")
	}
	_ = os.Remove(s.cfg.Socket)
	return nil
}
