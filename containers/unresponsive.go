package containers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/shim"
)

// A shim that stops answering (SIGSTOPped, stuck in a syscall, starved) must
// not take its container's lifecycle with it: every call to it has a deadline
// (shim.Client.Timeout), and what must happen anyway — stop, remove — happens
// without it, through the container's cgroup.

// unresponsive says whether err means the shim took too long.
func unresponsive(err error) bool { return errors.Is(err, context.DeadlineExceeded) }

// shimError names the container in a shim call's error and logs a shim that
// did not answer.
func (s *Service) shimError(rec store.Container, what string, err error) error {
	if unresponsive(err) {
		if s.cfg.OnShimTimeout != nil {
			s.cfg.OnShimTimeout(what)
		}
		s.log.Warn("container's shim did not answer", slog.String("container", rec.ID), slog.String("call", what),
			slog.String("socket", rec.Socket))
	}
	return fmt.Errorf("%s container %s: %w", what, rec.ID, err)
}

// cgroupsPath is the container's cgroup: in its record, or for records of an
// older berthd, in its spec.
func cgroupsPath(rec store.Container) (string, error) {
	if rec.CgroupsPath != "" {
		return rec.CgroupsPath, nil
	}
	b, err := os.ReadFile(filepath.Join(rec.Dir, "bundle", "config.json"))
	if err != nil {
		return "", err
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return "", err
	}
	if spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return "", fmt.Errorf("container %s: no cgroup in its spec", rec.ID)
	}
	return spec.Linux.CgroupsPath, nil
}

// stopWithoutShim stops a container whose shim does not answer: sig to every
// process of its cgroup, up to grace for them to go, then SIGKILL to what is
// left (frozen first), until the cgroup is empty. The exit is recorded and the
// shim killed, since it can no longer serve the container; Remove then
// deletes the runtime's state itself.
func (s *Service) stopWithoutShim(ctx context.Context, rec store.Container, sig syscall.Signal, grace time.Duration) error {
	s.log.Warn("stopping a container without its shim", slog.String("container", rec.ID), slog.Duration("grace", grace))
	path, err := cgroupsPath(rec)
	if err != nil {
		return fmt.Errorf("stop container %s without its shim: %w", rec.ID, err)
	}
	code := int32(128 + int(syscall.SIGKILL))
	if grace > 0 {
		if err := linux.SignalCgroup(path, sig); err != nil {
			return fmt.Errorf("stop container %s without its shim: %w", rec.ID, err)
		}
		deadline := time.Now().Add(grace)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if empty, _ := linux.CgroupEmpty(path); empty {
				code = int32(128 + int(sig))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := linux.KillCgroup(path, 10*time.Second); err != nil {
		return fmt.Errorf("stop container %s without its shim: %w", rec.ID, err)
	}
	s.recordExit(rec.ID, &shim.Exit{Code: code, At: time.Now().UTC(), Reason: "Error",
		Message: "berth-shim did not answer; the container was stopped through its cgroup"})
	s.killShim(rec)
	return nil
}

// killShim ends a shim that no longer answers. A container that still ran
// under it has been stopped first; its runtime state is deleted by Remove.
func (s *Service) killShim(rec store.Container) {
	pid, err := s.client(rec).ServerPid()
	if err != nil {
		return // gone already
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		s.log.Warn("kill unresponsive shim", slog.String("container", rec.ID), slog.Int("pid", pid), slog.Any("error", err))
		return
	}
	// SIGKILL is delivered asynchronously: wait until the shim has died, so
	// that stop's promise (nothing of the container left running) holds.
	for i := 0; i < 500 && linux.ProcessAlive(pid, 0); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	s.log.Warn("killed the container's unresponsive shim", slog.String("container", rec.ID), slog.Int("pid", pid))
	_ = os.Remove(rec.Socket) // a dead shim's socket answers nobody
}

// ShimInfo is what a container's shim says of itself, for verbose status.
type ShimInfo struct {
	Socket     string `json:"socket"`
	Pid        int    `json:"pid,omitempty"`
	Responsive bool   `json:"responsive"`
	Protocol   int    `json:"protocol,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Shim asks a container's shim, briefly, whether it answers.
func (s *Service) Shim(ctx context.Context, id string) (ShimInfo, error) {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return ShimInfo{}, err
	}
	info := ShimInfo{Socket: rec.Socket}
	c := s.client(rec)
	info.Pid, _ = c.ServerPid()
	ctx, cancel := context.WithTimeout(ctx, min(time.Second, s.shimTimeout()))
	defer cancel()
	_, v, err := c.Hello(ctx)
	if err != nil {
		info.Error = s.shimError(rec, "ask the shim of", err).Error()
		return info, nil
	}
	info.Responsive, info.Protocol = true, v
	return info, nil
}
