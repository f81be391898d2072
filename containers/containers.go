package containers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/ids"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci"
	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/oci/runtimecli"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/shim"
)

// Runtime is an OCI runtime binary reachable under a handler name.
type Runtime struct {
	Name string // CRI runtime handler; "" is the default
	Path string
}

// Config wires the service.
type Config struct {
	StateDir string // containers live in StateDir/containers/<id>
	ShimPath string
	// Runtimes by handler name; DefaultRuntime names the one for "".
	Runtimes       map[string]Runtime
	DefaultRuntime string
}

// Service manages containers and pods.
type Service struct {
	cfg       Config
	db        *store.DB
	images    *images.Service
	sandboxes *sandbox.Service
	oom       *oomClamp
	log       *slog.Logger

	// ctx lives as long as the service: exit monitors run under it.
	ctx      context.Context
	monitors sync.WaitGroup
	// locks serialise lifecycle calls per container.
	locks  sync.Map
	events events
}

// New returns the service; Recover must run before it serves calls.
func New(ctx context.Context, cfg Config, db *store.DB, img *images.Service, sb *sandbox.Service, log *slog.Logger) *Service {
	return &Service{cfg: cfg, db: db, images: img, sandboxes: sb, oom: newOOMClamp(log), log: log, ctx: ctx, events: events{log: log}}
}

// Wait blocks until the exit monitors have ended (after the service's context).
func (s *Service) Wait() { s.monitors.Wait() }

func (s *Service) lock(id string) func() {
	m, _ := s.locks.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (s *Service) runtime(handler string) (Runtime, error) {
	name := handler
	if name == "" {
		name = s.cfg.DefaultRuntime
	}
	rt, ok := s.cfg.Runtimes[name]
	if !ok {
		return rt, fmt.Errorf("runtime handler %q is not configured: %w", handler, errdefs.ErrInvalidArgument)
	}
	return rt, nil
}

// CreateRequest describes a container to create in a sandbox.
type CreateRequest struct {
	SandboxID   string
	Name        string
	Attempt     uint32
	Labels      map[string]string
	Annotations map[string]string
	Image       string
	LogPath     string // relative to the sandbox's log directory, as CRI says
	Config      []byte // the front end's record (CRI protobuf)
	Container   oci.ContainerConfig
	// Stdin keeps the process's stdin open for Attach; StdinOnce closes it
	// after the first attach ends.
	Stdin, StdinOnce bool
}

func (s *Service) containerDir(id string) string {
	return filepath.Join(s.cfg.StateDir, "containers", id)
}

// Create makes a container ready to start. On failure nothing is left behind.
func (s *Service) Create(ctx context.Context, r CreateRequest) (rec store.Container, err error) {
	if r.Name == "" {
		return rec, fmt.Errorf("container name is required: %w", errdefs.ErrInvalidArgument)
	}
	sb, err := s.sandboxes.Get(r.SandboxID)
	if err != nil {
		return rec, err
	}
	if sb.State != store.SandboxReady {
		return rec, fmt.Errorf("sandbox %s is not ready: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	img, err := s.images.Resolve(r.Image)
	if err != nil {
		return rec, err
	}
	imgCfg, err := images.Config(img)
	if err != nil {
		return rec, err
	}
	rt, err := s.runtime(sb.RuntimeHandler)
	if err != nil {
		return rec, err
	}
	all, err := s.db.Containers.List()
	if err != nil {
		return rec, err
	}
	for _, o := range all {
		if o.SandboxID == r.SandboxID && o.Name == r.Name && o.Attempt == r.Attempt {
			return rec, fmt.Errorf("container %q (attempt %d) in sandbox %s is %s: %w", r.Name, r.Attempt, r.SandboxID, o.ID, errdefs.ErrAlreadyExists)
		}
	}

	id := ids.New()
	dir := s.containerDir(id)
	rootfs := filepath.Join(dir, "bundle", "rootfs")
	logPath := ""
	if r.LogPath != "" && sb.LogDirectory != "" {
		logPath = filepath.Join(sb.LogDirectory, r.LogPath)
	}
	rec = store.Container{
		ID: id, SandboxID: sb.ID, Name: r.Name, Attempt: r.Attempt, Labels: r.Labels, Annotations: r.Annotations,
		Config: r.Config, ImageRef: r.Image, ImageID: img.ID, Runtime: rt.Path,
		RuntimeRoot: filepath.Join(s.cfg.StateDir, "runtime", rt.Name), Socket: s.socketPath(id),
		StopSignal: imgCfg.Config.StopSignal, State: store.ContainerCreated, CreatedAt: time.Now().UTC(),
		LogPath: logPath, Dir: dir,
	}
	// The record first: if berthd dies below, Recover finds it and cleans up.
	if err := s.db.Containers.Create(id, rec); err != nil {
		return rec, err
	}
	defer func() {
		if err != nil {
			_ = s.images.Snapshots().Unmount(id, rootfs)
			_ = os.RemoveAll(dir)
			_ = s.db.Containers.Delete(id)
		}
	}()
	if err := os.MkdirAll(filepath.Join(dir, "bundle"), 0o711); err != nil {
		return rec, err
	}
	if err := s.images.Snapshots().Mount(id, images.ChainIDsOf(img), rootfs); err != nil {
		return rec, err
	}
	spec, err := s.buildSpec(imgCfg.Config, sb, &r.Container, rootfs, id)
	if err != nil {
		return rec, fmt.Errorf("container %q: %w", r.Name, err)
	}
	if err := writeSpec(filepath.Join(dir, "bundle"), spec); err != nil {
		return rec, err
	}
	if logPath != "" {
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return rec, fmt.Errorf("log directory: %w", err)
		}
	}
	client, err := shim.Spawn(ctx, s.cfg.ShimPath, dir, shim.Config{
		ID: id, Bundle: filepath.Join(dir, "bundle"), Runtime: rt.Path, RuntimeRoot: rec.RuntimeRoot,
		LogPath: logPath, Socket: rec.Socket, Stdin: r.Stdin, StdinOnce: r.StdinOnce, Tty: r.Container.Tty,
	})
	if err != nil {
		return rec, fmt.Errorf("create container %q: %w", r.Name, err)
	}
	st, err := client.State(ctx)
	if err != nil {
		_ = client.Delete(context.WithoutCancel(ctx))
		return rec, err
	}
	rec, err = s.db.Containers.Update(id, func(c *store.Container) error { c.Pid = st.Pid; return nil })
	if err != nil {
		_ = client.Delete(context.WithoutCancel(ctx))
		return rec, err
	}
	s.monitor(rec)
	s.publish(EventCreated, id, sb.ID)
	s.log.Info("container created", slog.String("container", id), slog.String("name", r.Name), slog.String("sandbox", sb.ID))
	return rec, nil
}

// socketPath keeps shim sockets short: sun_path holds 108 bytes, and a
// 64-digit ID under a deep --state would not fit.
func (s *Service) socketPath(id string) string {
	return filepath.Join(s.cfg.StateDir, "s", id[:32]+".sock")
}

func (s *Service) buildSpec(img specsImageConfig, sb store.Sandbox, c *oci.ContainerConfig, rootfs, id string) (*specs.Spec, error) {
	c.Namespaces.Network = sb.Namespaces["net"]
	c.Namespaces.IPC = sb.Namespaces["ipc"]
	c.Namespaces.UTS = sb.Namespaces["uts"]
	c.Namespaces.HostNetwork = c.Namespaces.Network == ""
	c.Namespaces.HostIPC = c.Namespaces.IPC == ""
	switch {
	case c.Namespaces.TargetPID != "":
		target, err := s.db.Containers.Get(c.Namespaces.TargetPID)
		if err != nil || target.SandboxID != sb.ID || target.State != store.ContainerRunning {
			return nil, fmt.Errorf("PID namespace target %q is not a running container of this pod: %w", c.Namespaces.TargetPID, errdefs.ErrFailedPrecondition)
		}
		c.Namespaces.PID = fmt.Sprintf("/proc/%d/ns/pid", target.Pid)
	case c.Namespaces.PodPID && sb.Namespaces["pid"] != "":
		c.Namespaces.PID = sb.Namespaces["pid"]
	}
	if sb.Namespaces["ipc"] != "" {
		c.ShmPath = filepath.Join(sb.Dir, sandbox.ShmDir)
	}
	c.EtcFiles = map[string]string{
		"/etc/hosts":       filepath.Join(sb.Dir, sandbox.HostsFile),
		"/etc/resolv.conf": filepath.Join(sb.Dir, sandbox.ResolvFile),
		"/etc/hostname":    filepath.Join(sb.Dir, sandbox.HostnameFile),
	}
	if len(sb.Sysctls) > 0 {
		merged := maps.Clone(sb.Sysctls)
		maps.Copy(merged, c.Sysctls)
		c.Sysctls = merged
	}
	parent := sb.CgroupParent
	if parent == "" {
		parent = "/berth"
	}
	c.CgroupsPath = filepath.Join(parent, id)
	if c.OOMScoreAdj != nil {
		v := s.oom.clamp(*c.OOMScoreAdj)
		c.OOMScoreAdj = &v
	}
	return oci.BuildSpec(img, c, rootfs)
}

// Start starts a created container.
func (s *Service) Start(ctx context.Context, id string) error {
	defer s.lock(id)()
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return err
	}
	if rec.State != store.ContainerCreated {
		return fmt.Errorf("container %s is %s, not created: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	st, err := s.client(rec).Start(ctx)
	if err != nil {
		_, _ = s.db.Containers.Update(id, func(c *store.Container) error {
			c.State, c.Reason, c.Message = store.ContainerExited, "StartError", err.Error()
			c.ExitCode, c.FinishedAt = 128, time.Now().UTC()
			return nil
		})
		return fmt.Errorf("start container %s: %w", id, err)
	}
	_, err = s.db.Containers.Update(id, func(c *store.Container) error {
		// The monitor may have recorded a quick exit already.
		if c.State == store.ContainerCreated {
			c.State = store.ContainerRunning
		}
		c.StartedAt = st.Started
		return nil
	})
	if err == nil {
		s.publish(EventStarted, id, rec.SandboxID)
	}
	return err
}

func (s *Service) client(rec store.Container) *shim.Client { return &shim.Client{Socket: rec.Socket} }

// monitor waits, in the background, for the container's exit and records it.
func (s *Service) monitor(rec store.Container) {
	s.monitors.Add(1)
	go func() {
		defer s.monitors.Done()
		st, err := s.client(rec).Wait(s.ctx)
		if s.ctx.Err() != nil {
			return // berthd is stopping; the shim keeps the exit for the next one
		}
		// After any Start, Stop or Remove under way: a quick exit must not be
		// recorded (and published) before the start that preceded it.
		defer s.lock(rec.ID)()
		exit := st.Exit
		if err != nil {
			// The shim is gone: the exit file is what it left us, if the
			// container exited first; else the container runs on unmanaged.
			if exit, err = shim.ReadExit(rec.Dir); err != nil {
				exit = s.killOrphan(rec)
			}
		}
		s.recordExit(rec.ID, exit)
	}()
}

// killOrphan ends a container whose shim died before it: with nobody to reap
// it, copy its output or hear its exit, it is killed and deleted through the
// runtime, and reported exited with 255, as containerd does.
func (s *Service) killOrphan(rec store.Container) *shim.Exit {
	if _, err := s.db.Containers.Get(rec.ID); err != nil {
		return &shim.Exit{Code: 255, At: time.Now().UTC(), Reason: "Unknown"} // removed meanwhile
	}
	s.log.Error("container's shim died; killing the container", slog.String("container", rec.ID))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
	defer cancel()
	rt := runtimecli.Runtime{Path: rec.Runtime, Root: rec.RuntimeRoot}
	_ = rt.Kill(ctx, rec.ID, int(syscall.SIGKILL), true)
	if err := rt.Delete(ctx, rec.ID, true); err != nil {
		s.log.Error("delete orphaned container", slog.String("container", rec.ID), slog.Any("error", err))
	}
	return &shim.Exit{Code: 255, At: time.Now().UTC(), Reason: "Error", Message: "berth-shim died; the container was killed"}
}

func (s *Service) recordExit(id string, e *shim.Exit) {
	changed := false
	rec, err := s.db.Containers.Update(id, func(c *store.Container) error {
		if c.State == store.ContainerExited {
			return nil
		}
		changed = true
		c.State, c.ExitCode, c.FinishedAt, c.Reason = store.ContainerExited, e.Code, e.At, e.Reason
		if e.Message != "" {
			c.Message = e.Message
		}
		return nil
	})
	if err != nil && !errdefs.IsNotFound(err) {
		s.log.Error("record container exit", slog.String("container", id), slog.Any("error", err))
		return
	}
	if changed {
		s.publish(EventStopped, id, rec.SandboxID)
		s.log.Info("container exited", slog.String("container", id), slog.Int("code", int(e.Code)))
	}
}

// Stop sends the stop signal, then SIGKILL after timeout. Stopping a stopped
// container is not an error.
func (s *Service) Stop(ctx context.Context, id string, timeout time.Duration) error {
	defer s.lock(id)()
	return s.stop(ctx, id, timeout)
}

func (s *Service) stop(ctx context.Context, id string, timeout time.Duration) error {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return err
	}
	if rec.State == store.ContainerExited || rec.State == store.ContainerUnknown {
		return nil
	}
	c := s.client(rec)
	if timeout > 0 {
		sig := syscall.SIGTERM
		if rec.StopSignal != "" {
			if n, err := linux.ParseSignal(rec.StopSignal); err == nil {
				sig = n
			}
		}
		if err := c.Kill(ctx, sig, false); err != nil && !errors.Is(err, shim.ErrShimGone) {
			return fmt.Errorf("stop container %s: %w", id, err)
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		st, err := c.Wait(wctx)
		cancel()
		if err == nil && st.Exit != nil {
			s.recordExit(id, st.Exit)
			return nil
		}
	}
	if err := c.Kill(ctx, syscall.SIGKILL, true); err != nil && !errors.Is(err, shim.ErrShimGone) {
		return fmt.Errorf("kill container %s: %w", id, err)
	}
	st, err := c.Wait(ctx)
	if err != nil {
		if errors.Is(err, shim.ErrShimGone) {
			return nil // the monitor records what the shim left
		}
		return fmt.Errorf("wait for container %s: %w", id, err)
	}
	s.recordExit(id, st.Exit)
	return nil
}

// Remove deletes a container, killing it first if it runs (the CRI contract).
// Removing a missing container is not an error.
func (s *Service) Remove(ctx context.Context, id string) error {
	defer s.lock(id)()
	rec, err := s.db.Containers.Get(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.stop(ctx, id, 0); err != nil {
		return err
	}
	if err := s.client(rec).Delete(ctx); err != nil {
		if !errors.Is(err, shim.ErrShimGone) {
			return fmt.Errorf("remove container %s: %w", id, err)
		}
		// No shim to ask: clean the runtime's state ourselves.
		rt := runtimecli.Runtime{Path: rec.Runtime, Root: rec.RuntimeRoot}
		_ = rt.Delete(ctx, id, true)
	}
	if err := s.images.Snapshots().Unmount(id, filepath.Join(rec.Dir, "bundle", "rootfs")); err != nil {
		return err
	}
	if err := os.RemoveAll(rec.Dir); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	_ = os.Remove(rec.Socket)
	s.locks.Delete(id)
	if err := s.db.Containers.Delete(id); err != nil {
		return err
	}
	s.publish(EventDeleted, id, rec.SandboxID)
	return nil
}

// Get returns a container's record.
func (s *Service) Get(id string) (store.Container, error) { return s.db.Containers.Get(id) }

// List returns every container.
func (s *Service) List() ([]store.Container, error) { return s.db.Containers.List() }

// RunPod checks the pod's runtime handler, then creates its sandbox.
func (s *Service) RunPod(ctx context.Context, r sandbox.Request) (store.Sandbox, error) {
	if _, err := s.runtime(r.RuntimeHandler); err != nil {
		return store.Sandbox{}, err
	}
	return s.sandboxes.Run(ctx, r)
}

// StopPod stops every container of the sandbox, then the sandbox.
func (s *Service) StopPod(ctx context.Context, sandboxID string) error {
	if _, err := s.sandboxes.Get(sandboxID); err != nil {
		return err
	}
	for _, c := range s.inSandbox(sandboxID) {
		if err := s.Stop(ctx, c.ID, 0); err != nil {
			return fmt.Errorf("stop sandbox %s: %w", sandboxID, err)
		}
	}
	return s.sandboxes.Stop(ctx, sandboxID)
}

// RemovePod removes every container of the sandbox, then the sandbox.
func (s *Service) RemovePod(ctx context.Context, sandboxID string) error {
	for _, c := range s.inSandbox(sandboxID) {
		if err := s.Remove(ctx, c.ID); err != nil {
			return fmt.Errorf("remove sandbox %s: %w", sandboxID, err)
		}
	}
	return s.sandboxes.Remove(ctx, sandboxID)
}

func (s *Service) inSandbox(id string) []store.Container {
	all, _ := s.db.Containers.List()
	return slices.DeleteFunc(all, func(c store.Container) bool { return c.SandboxID != id })
}

// Recover reconciles records with the shims after a berthd start: running
// containers get their exit monitors back; exits that happened while berthd
// was away are recorded; containers whose creation was cut short are removed.
func (s *Service) Recover(ctx context.Context) error {
	all, err := s.db.Containers.List()
	if err != nil {
		return err
	}
	for _, rec := range all {
		if rec.State == store.ContainerExited {
			continue
		}
		st, err := s.client(rec).State(ctx)
		switch {
		case err == nil && st.Exit != nil:
			s.recordExit(rec.ID, st.Exit)
		case err == nil:
			if rec.State == store.ContainerCreated && !st.Started.IsZero() {
				_, _ = s.db.Containers.Update(rec.ID, func(c *store.Container) error {
					c.State, c.StartedAt = store.ContainerRunning, st.Started
					return nil
				})
			}
			s.monitor(rec)
		default:
			if e, rerr := shim.ReadExit(rec.Dir); rerr == nil {
				s.recordExit(rec.ID, e)
				continue
			}
			if rec.Pid == 0 {
				// Cut short during Create, before its shim answered.
				s.log.Warn("removing a container whose creation was interrupted", slog.String("container", rec.ID))
				_ = s.Remove(ctx, rec.ID)
				continue
			}
			s.recordExit(rec.ID, s.killOrphan(rec))
		}
	}
	return nil
}

// ExecResult is what ExecSync's process did.
type ExecResult = shim.ExecResult

// ExecSync runs cmd in a running container and returns its exit code and
// output; at the timeout (0: none) the process is killed and TimedOut set.
func (s *Service) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*ExecResult, error) {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return nil, err
	}
	if rec.State != store.ContainerRunning {
		return nil, fmt.Errorf("container %s is %s, not running: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	if len(cmd) == 0 {
		return nil, fmt.Errorf("exec in %s: empty command: %w", id, errdefs.ErrInvalidArgument)
	}
	res, err := s.client(rec).Exec(ctx, cmd, timeout)
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", id, err)
	}
	return res, nil
}

// ReopenLog makes a running container's shim reopen its log file, after
// kubelet has rotated it.
func (s *Service) ReopenLog(ctx context.Context, id string) error {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return err
	}
	if rec.State != store.ContainerRunning {
		return fmt.Errorf("container %s is %s, not running: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	if err := s.client(rec).ReopenLog(ctx); err != nil {
		return fmt.Errorf("reopen log of %s: %w", id, err)
	}
	return nil
}

// ImageInUse reports a container (in any state) that uses the image: its
// root filesystem stands on the image's layers until it is removed.
func (s *Service) ImageInUse(imageID string) (string, bool) {
	all, _ := s.db.Containers.List()
	for _, c := range all {
		if c.ImageID == imageID {
			return c.ID, true
		}
	}
	return "", false
}

// StreamOpts are an interactive exec's streams; Size a terminal's size.
type (
	StreamOpts = shim.StreamOpts
	Size       = shim.Size
)

// ExecStream runs a process in a running container with its streams wired
// to o's, and returns its exit code.
func (s *Service) ExecStream(ctx context.Context, id string, o StreamOpts) (int32, error) {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return 0, err
	}
	if rec.State != store.ContainerRunning {
		return 0, fmt.Errorf("container %s is %s, not running: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	return s.client(rec).ExecStream(ctx, o)
}

// Attach streams a running container's output to o's writers and o.Stdin to
// its stdin (if it was created with one) until it exits; it returns the exit code.
func (s *Service) Attach(ctx context.Context, id string, o StreamOpts) (int32, error) {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return 0, err
	}
	if rec.State != store.ContainerRunning {
		return 0, fmt.Errorf("container %s is %s, not running: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	return s.client(rec).Attach(ctx, o)
}

// Update changes a running or created container's cgroup limits.
func (s *Service) Update(ctx context.Context, id string, r oci.Resources) error {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return err
	}
	if rec.State != store.ContainerRunning && rec.State != store.ContainerCreated {
		return fmt.Errorf("container %s is %s: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	b, err := json.Marshal(oci.LinuxResources(r))
	if err != nil {
		return err
	}
	if err := s.client(rec).Update(ctx, b); err != nil {
		return fmt.Errorf("update container %s: %w", id, err)
	}
	return nil
}
