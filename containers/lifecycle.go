package containers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/nri"
	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/oci/runtimecli"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/shim"
)

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
	var sb store.Sandbox
	var nc nri.Container
	if s.cfg.NRI.Active() {
		sb, nc = s.nriPod(rec.SandboxID), s.nriContainer(rec)
		if err := s.cfg.NRI.StartContainer(ctx, sb, nc); err != nil {
			// Not started: it ends as a container that failed to start.
			_ = s.client(rec).Kill(ctx, syscall.SIGKILL, true)
			s.startFailed(rec, err)
			return fmt.Errorf("start container %s: %w", id, err)
		}
	}
	st, err := s.client(rec).Start(ctx)
	if err != nil {
		s.startFailed(rec, err)
		return fmt.Errorf("start container %s: %w", id, err)
	}
	rec, err = s.db.Containers.Update(id, func(c *store.Container) error {
		// The monitor may have recorded a quick exit already.
		if c.State == store.ContainerCreated {
			c.State = store.ContainerRunning
		}
		c.StartedAt = st.Started
		return nil
	})
	if err != nil {
		return err
	}
	s.publish(EventStarted, id, rec.SandboxID)
	if nc.Rec.ID != "" { // plugins were told of the start
		nc.Rec = rec
		s.cfg.NRI.PostStartContainer(ctx, sb, nc)
	}
	return nil
}

// startFailed records a start that failed as the container's exit.
func (s *Service) startFailed(rec store.Container, err error) {
	changed := false
	rec, uerr := s.db.Containers.Update(rec.ID, func(c *store.Container) error {
		if c.State == store.ContainerExited {
			return nil
		}
		changed = true
		c.State, c.Reason, c.Message = store.ContainerExited, "StartError", err.Error()
		c.ExitCode, c.FinishedAt = 128, time.Now().UTC()
		return nil
	})
	if uerr == nil && changed {
		s.nriStopped(rec)
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
	if rec.Paused {
		// A frozen process takes no signal: thawed first, as dockerd does.
		if err := c.Resume(ctx); err == nil {
			_, _ = s.db.Containers.Update(id, func(c *store.Container) error { c.Paused = false; return nil })
		}
	}
	sig := syscall.SIGTERM
	if rec.StopSignal != "" {
		if n, err := linux.ParseSignal(rec.StopSignal); err == nil {
			sig = n
		}
	}
	if timeout > 0 {
		// The shim has the grace period, at most, to take the signal.
		kctx, cancel := context.WithTimeout(ctx, min(timeout, s.shimTimeout()))
		err := c.Kill(kctx, sig, false)
		cancel()
		if unresponsive(err) {
			return s.stopWithoutShim(ctx, rec, sig, timeout)
		}
		if err != nil && !errors.Is(err, shim.ErrShimGone) {
			return s.shimError(rec, "stop", err)
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
		if unresponsive(err) {
			return s.stopWithoutShim(ctx, rec, syscall.SIGKILL, 0)
		}
		return s.shimError(rec, "kill", err)
	}
	// SIGKILL is not refused: the exit is a matter of moments, unless the
	// shim has stopped answering since.
	wctx, cancel := context.WithTimeout(ctx, s.shimTimeout())
	st, err := c.Wait(wctx)
	cancel()
	if err != nil {
		if errors.Is(err, shim.ErrShimGone) {
			return nil // the monitor records what the shim left
		}
		if unresponsive(err) {
			return s.stopWithoutShim(ctx, rec, syscall.SIGKILL, 0)
		}
		return s.shimError(rec, "wait for", err)
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
	var nc nri.Container // what plugins hear of it, read before its directory goes
	if s.cfg.NRI.Active() {
		if cur, err := s.db.Containers.Get(id); err == nil {
			nc = s.nriContainer(cur)
		}
	}
	if err := s.client(rec).Delete(ctx); err != nil {
		if unresponsive(err) {
			// The container has exited (stop saw to it); the shim that
			// holds its state does not answer: end it, clean up ourselves.
			_ = s.shimError(rec, "remove", err)
			s.killShim(rec)
		} else if !errors.Is(err, shim.ErrShimGone) {
			return s.shimError(rec, "remove", err)
		}
		// No shim to ask: clean the runtime's state ourselves.
		rt := runtimecli.Runtime{Path: rec.Runtime, Root: rec.RuntimeRoot}
		_ = rt.Delete(ctx, id, true)
	}
	if err := s.images.Snapshots().Unmount(id, filepath.Join(rec.Dir, "bundle", "rootfs")); err != nil {
		return err
	}
	if err := unmountVolumes(rec.Dir); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if err := os.RemoveAll(rec.Dir); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	_ = os.Remove(rec.Socket)
	s.locks.Delete(id)
	s.layers.forget(id)
	if err := s.db.Containers.Delete(id); err != nil {
		return err
	}
	s.publish(EventDeleted, id, rec.SandboxID)
	if nc.Rec.ID != "" {
		s.cfg.NRI.RemoveContainer(ctx, s.nriPod(rec.SandboxID), nc)
	}
	return nil
}

// RunPod checks the pod's runtime handler, then creates its sandbox.
func (s *Service) RunPod(ctx context.Context, r sandbox.Request) (store.Sandbox, error) {
	if _, err := s.runtime(r.RuntimeHandler); err != nil {
		return store.Sandbox{}, err
	}
	if r.UserNS != nil && !s.handler(ctx, r.RuntimeHandler).UserNamespaces {
		return store.Sandbox{}, fmt.Errorf("runtime handler %q cannot give pods user namespaces of their own on this node: %w",
			r.RuntimeHandler, errdefs.ErrInvalidArgument)
	}
	if s.cfg.NRI == nil {
		return s.sandboxes.Run(ctx, r)
	}
	told := false
	r.BeforeReady = func(ctx context.Context, sb store.Sandbox) error {
		// Asked now, not when the call came: a plugin that finished its
		// synchronization while the pod was set up hears of it.
		if !s.cfg.NRI.Active() {
			return nil
		}
		told = true
		return s.cfg.NRI.RunPod(ctx, sb)
	}
	sb, err := s.sandboxes.Run(ctx, r)
	if err != nil && told {
		// Plugins that saw it run (all but a refusing one) hear it is gone.
		s.cfg.NRI.RemovePod(context.WithoutCancel(ctx), sb)
	}
	return sb, err
}

// StopPod stops every container of the sandbox, then the sandbox. NRI
// plugins hear of it once, between the two: a stopped pod stops again
// without a word to them.
func (s *Service) StopPod(ctx context.Context, sandboxID string) error {
	sb, err := s.sandboxes.Get(sandboxID)
	if err != nil {
		return err
	}
	for _, c := range s.inSandbox(sandboxID) {
		if err := s.Stop(ctx, c.ID, 0); err != nil {
			return fmt.Errorf("stop sandbox %s: %w", sandboxID, err)
		}
	}
	if sb.State == store.SandboxReady {
		s.cfg.NRI.StopPod(ctx, sb)
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
	sb, err := s.sandboxes.Get(sandboxID)
	if err != nil {
		return s.sandboxes.Remove(ctx, sandboxID)
	}
	if sb.State == store.SandboxReady {
		s.cfg.NRI.StopPod(ctx, sb) // removed without a stop first
	}
	if err := s.sandboxes.Remove(ctx, sandboxID); err != nil {
		return err
	}
	s.cfg.NRI.RemovePod(ctx, sb)
	return nil
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
		return s.shimError(rec, "reopen the log of", err)
	}
	return nil
}

// RemoveOwnedPods removes every pod of a front end that keeps none across
// a restart (a build's RUN steps, cut short by a crash): what berthd left
// half-done is not left for good.
func (s *Service) RemoveOwnedPods(ctx context.Context, owner string) {
	pods, err := s.sandboxes.List()
	if err != nil {
		s.log.Warn("list pods", slog.Any("error", err))
		return
	}
	for _, p := range pods {
		if p.Owner != owner {
			continue
		}
		if err := s.RemovePod(ctx, p.ID); err != nil {
			s.log.Warn("remove a pod left by an interrupted "+owner, slog.String("sandbox", p.ID), slog.Any("error", err))
		}
	}
}
