package shim

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/linux"
)

// runtimeIsOurs says whether the container's runtime is berth-runtime, whose
// start and exec the shim can do itself (startContainer, execDirect).
func (s *server) runtimeIsOurs() bool { return filepath.Base(s.rt.Path) == "berth-runtime" }

// startContainer starts the container's process. With berth-runtime it does
// what `berth-runtime start` does (oci/linux.Start: open the exec FIFO, read
// the init's byte, run poststart hooks) from this process: the runtime's
// start is a Go program whose own start was most of a StartContainer's cost.
// Other runtimes get their "start".
func (s *server) startContainer(ctx context.Context) error {
	if s.runtimeIsOurs() {
		// Poststart hooks are our children then: theirs to wait for, not the reaper's.
		s.reaper.hold()
		defer s.reaper.release()
		return linux.Start(ctx, s.rt.Root, s.cfg.ID)
	}
	return s.rt.Start(ctx, s.cfg.ID)
}

// execDirect runs an ExecSync's process the way `berth-runtime exec` does
// (oci/linux.Exec, with berth-runtime's nsenter constructor forking it inside
// the container), but from this process: the runtime's exec is a Go program
// whose start alone cost ~2.5 ms of the ~5 an exec took, and kubelet's probes
// pay that for every probed container every few seconds. The process is
// adopted by the shim (the subreaper) when its forker exits; the reaper is
// held until it is ours to wait for. It fails with linux.ErrSeccompNeedsCgo,
// before starting anything, for a container whose runtime state keeps no
// compiled seccomp filter: the runtime's exec must do that one.
func (s *server) execDirect(ctx context.Context, p *specs.Process, timeout time.Duration) (*ExecResult, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	var stdout, stderr boundedBuffer
	var copying sync.WaitGroup
	pipe := func(into *boundedBuffer) (*os.File, error) {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		copying.Add(1)
		go func() {
			defer copying.Done()
			defer r.Close()
			_, _ = io.Copy(into, r)
		}()
		return w, nil
	}
	outW, err := pipe(&stdout)
	if err != nil {
		return nil, err
	}
	errW, err := pipe(&stderr)
	if err != nil {
		outW.Close()
		copying.Wait()
		return nil, err
	}
	s.reaper.hold()
	pid, err := linux.Exec(ctx, linux.ExecOpts{
		Root: s.rt.Root, ID: s.cfg.ID, Process: p, Self: s.rt.Path, NsenterLinked: true,
		Stdin: devnull, Stdout: outW, Stderr: errW,
	})
	if err == nil {
		s.reaper.own(pid)
	}
	s.reaper.release()
	outW.Close()
	errW.Close()
	if err != nil {
		copying.Wait()
		return nil, fmt.Errorf("exec %s: %w", p.Args[0], err)
	}
	defer s.reaper.disown(pid)

	done := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
				break
			}
		}
		done <- ws
	}()
	kill := func() { _ = linux.SignalChildOf(pid, unix.SIGKILL, os.Getpid()) }
	res := &ExecResult{}
	ws, timedOut, ctxErr := awaitExec(ctx, timeout, done, kill)
	copying.Wait()
	if ctxErr != nil {
		return nil, ctxErr
	}
	res.TimedOut = timedOut
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	res.ExitCode = exitCode(ws)
	return res, nil
}
