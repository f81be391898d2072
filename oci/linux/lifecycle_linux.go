package linux

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Start releases a created container's init into the user's process.
func Start(ctx context.Context, root, id string) error {
	s, err := Load(root, id)
	if err != nil {
		return err
	}
	switch st := s.Status(root); st {
	case specs.StateCreated:
	case specs.StateStopped:
		return fmt.Errorf("container %s: cannot start a stopped container: %w", id, errdefs.ErrFailedPrecondition)
	default:
		return fmt.Errorf("container %s is %s, not created: %w", id, st, errdefs.ErrFailedPrecondition)
	}
	fifo := filepath.Join(stateDir(root, id), fifoName)
	f, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer f.Close()
	// The init is blocked opening the FIFO for writing; our open lets it
	// through, and its one byte says it is about to exec.
	fd := int(f.Fd())
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 100)
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("poll exec fifo: %w", err)
		}
		if n > 0 {
			buf := make([]byte, 1)
			if k, _ := unix.Read(fd, buf); k == 1 {
				break
			}
		}
		if !processAlive(s.Pid, s.StartTime) {
			return fmt.Errorf("container %s: init process %d exited before start", id, s.Pid)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("start %s: %w", id, err)
		}
	}
	if err := os.Remove(fifo); err != nil {
		return err
	}
	// poststart failures are warnings: the container runs (the spec).
	if spec, err := LoadSpec(s.Bundle); err == nil && spec.Hooks != nil && len(spec.Hooks.Poststart) > 0 {
		st := hookState(id, s.Bundle, s.Pid, specs.StateRunning, s.Annotations)
		if err := runHooks("poststart", spec.Hooks.Poststart, st); err != nil {
			slog.Warn("poststart hook failed", slog.String("container", id), slog.Any("error", err))
		}
	}
	return nil
}

// ParseSignal accepts "KILL", "SIGKILL" or "9".
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("unknown signal %q", s)
	}
	return sig, nil
}

// Kill signals the init, or with all every process in the container's cgroup.
func Kill(root, id string, sig unix.Signal, all bool) error {
	s, err := Load(root, id)
	if err != nil {
		return err
	}
	if !all {
		if s.Status(root) == specs.StateStopped {
			return fmt.Errorf("container %s is not running: %w", id, errdefs.ErrFailedPrecondition)
		}
		if err := SignalProcess(s.Pid, s.StartTime, sig); err != nil {
			return fmt.Errorf("signal %s to %s: %w", unix.SignalName(sig), id, err)
		}
		return nil
	}
	return signalAll(s, sig)
}

func signalAll(s *State, sig unix.Signal) error {
	// Freeze first where we can, so that a fork bomb cannot outrun the loop.
	pids, err := s.Cgroup.procs()
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("list processes of %s: %w", s.ID, err)
	}
	for _, p := range pids {
		if err := unix.Kill(p, sig); err != nil && err != unix.ESRCH {
			return fmt.Errorf("signal %d: %w", p, err)
		}
	}
	return nil
}

// Delete removes a stopped container's cgroup and state. With force a
// running one is killed first; deleting a missing container with force is not an error.
func Delete(root, id string, force bool) error {
	s, err := Load(root, id)
	if err != nil {
		if force && errors.Is(err, errdefs.ErrNotFound) {
			_ = os.RemoveAll(stateDir(root, id)) // a half-written state dir
			return nil
		}
		return err
	}
	switch st := s.Status(root); st {
	case specs.StateStopped:
	case specs.StateCreated:
		// A created container never ran the user's process: deleting it is always allowed.
		if err := killAndWait(s); err != nil {
			return err
		}
	default:
		if !force {
			return fmt.Errorf("container %s is %s: stop it first or use --force: %w", id, st, errdefs.ErrFailedPrecondition)
		}
		if err := killAndWait(s); err != nil {
			return err
		}
	}
	if err := s.Cgroup.destroy(); err != nil {
		return err
	}
	if err := os.RemoveAll(stateDir(root, id)); err != nil {
		return err
	}
	// poststop failures are warnings: the container is gone either way.
	if spec, err := LoadSpec(s.Bundle); err == nil && spec.Hooks != nil && len(spec.Hooks.Poststop) > 0 {
		st := hookState(id, s.Bundle, 0, specs.StateStopped, s.Annotations)
		if err := runHooks("poststop", spec.Hooks.Poststop, st); err != nil {
			slog.Warn("poststop hook failed", slog.String("container", id), slog.Any("error", err))
		}
	}
	return nil
}

func killAndWait(s *State) error {
	if s.Cgroup.frozen() {
		_ = s.Cgroup.thaw()
	}
	_ = SignalProcess(s.Pid, s.StartTime, unix.SIGKILL) // never a pid another process has taken since
	_ = signalAll(s, unix.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for processAlive(s.Pid, s.StartTime) {
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s: process %d survived SIGKILL", s.ID, s.Pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// Pids lists the processes in a container's cgroup.
func Pids(root, id string) ([]int, error) {
	s, err := Load(root, id)
	if err != nil {
		return nil, err
	}
	p, err := s.Cgroup.procs()
	if p == nil {
		p = []int{}
	}
	return p, err
}

// Pause freezes a running container.
func Pause(root, id string) error {
	s, err := Load(root, id)
	if err != nil {
		return err
	}
	if st := s.Status(root); st != specs.StateRunning {
		return fmt.Errorf("container %s is %s, not running: %w", id, st, errdefs.ErrFailedPrecondition)
	}
	return s.Cgroup.freeze(true)
}

// Resume thaws a paused container.
func Resume(root, id string) error {
	s, err := Load(root, id)
	if err != nil {
		return err
	}
	if st := s.Status(root); st != statePaused {
		return fmt.Errorf("container %s is %s, not paused: %w", id, st, errdefs.ErrFailedPrecondition)
	}
	return s.Cgroup.freeze(false)
}

// Update changes a live container's cgroup limits; only the fields r sets.
func Update(root, id string, r *specs.LinuxResources) error {
	s, err := Load(root, id)
	if err != nil {
		return err
	}
	if s.Status(root) == specs.StateStopped {
		return fmt.Errorf("container %s is stopped: %w", id, errdefs.ErrFailedPrecondition)
	}
	if err := unsupportedResources(r); err != nil {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	return s.Cgroup.set(r)
}
