package containers

import (
	"context"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/oci/runtimecli"
	"github.com/berth-runtime/berth/shim"
)

// monitor waits, in the background, for the container's exit and records it.
func (s *Service) monitor(rec store.Container) { s.watch(rec, nil) }

// watch is monitor; gate, when not nil, bounds how many monitors dial their
// shims at once: recovery starts one per running container, and a thousand
// shims woken together would starve berthd's first answers of both CPUs.
func (s *Service) watch(rec store.Container, gate chan struct{}) {
	s.monitors.Add(1)
	go func() {
		defer s.monitors.Done()
		c := s.client(rec)
		if gate != nil {
			select {
			case gate <- struct{}{}:
			case <-s.ctx.Done():
				return
			}
			var once sync.Once
			c.Sent = func() { once.Do(func() { <-gate }) }
			defer c.Sent()
		}
		st, err := c.Wait(s.ctx)
		if s.ctx.Err() != nil {
			return // berthd is stopping; the shim keeps the exit for the next one
		}
		// After any Start, Stop or Remove under way: a quick exit must not be
		// recorded (and published) before the start that preceded it.
		defer s.lock(rec.ID)()
		if cur, err := s.db.Containers.Get(rec.ID); err == nil && cur.RestartCount != rec.RestartCount {
			return // the shim watched here belonged to an earlier run (Restart)
		}
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
	cur, err := s.db.Containers.Get(rec.ID)
	if err != nil {
		return &shim.Exit{Code: 255, At: time.Now().UTC(), Reason: "Unknown"} // removed meanwhile
	}
	if cur.State == store.ContainerExited {
		// Stopped without its shim, which was then killed: nothing to do.
		return &shim.Exit{Code: cur.ExitCode, At: cur.FinishedAt, Reason: cur.Reason, Message: cur.Message}
	}
	s.log.Error("container's shim died; killing the container", slog.String("container", rec.ID))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
	defer cancel()
	rt := runtimecli.Runtime{Path: rec.Runtime, Root: rec.RuntimeRoot}
	_ = rt.Kill(ctx, rec.ID, int(syscall.SIGKILL), true)
	// The runtime may have lost its state with the shim: the cgroup is what
	// holds every process of the container, so end them there and check.
	msg := "berth-shim died; the container was killed"
	if path, err := cgroupsPath(rec); err == nil {
		if err := linux.KillCgroup(path, 10*time.Second); err != nil {
			s.log.Error("kill orphaned container through its cgroup", slog.String("container", rec.ID), slog.Any("error", err))
			msg += "; some of its processes may still run: " + err.Error()
		}
	}
	if err := rt.Delete(ctx, rec.ID, true); err != nil {
		s.log.Error("delete orphaned container", slog.String("container", rec.ID), slog.Any("error", err))
	}
	return &shim.Exit{Code: 255, At: time.Now().UTC(), Reason: "Error", Message: msg}
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
		if s.cfg.OnExit != nil {
			s.cfg.OnExit(e.Reason)
		}
		s.events.publish(Event{Type: EventStopped, ContainerID: id, SandboxID: rec.SandboxID, At: time.Now().UTC(), ExitCode: e.Code})
		s.log.Info("container exited", slog.String("container", id), slog.Int("code", int(e.Code)))
		s.nriStopped(rec)
	}
}
