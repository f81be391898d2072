package linux

import (
	"fmt"
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// WaitForwarding waits for pid, a child of the caller, and forwards the
// signals named to it until it is reaped. A child that has exited keeps its
// pid until it is reaped, so the wait first waits without reaping and the
// reap and each forwarded signal take one lock: a signal that arrives as the
// child is reaped is dropped instead of reaching whatever process is given
// the pid next (berthd itself, after a restart, once got a SIGTERM meant for
// a container that had just exited). It returns the child's status as a
// shell reports it: the exit code, or 128+signal.
func WaitForwarding(pid int, forward ...os.Signal) (int, error) {
	var mu sync.Mutex
	reaped := false
	sigs := make(chan os.Signal, 8)
	done := make(chan struct{})
	signal.Notify(sigs, forward...)
	go func() {
		defer close(done)
		for s := range sigs {
			mu.Lock()
			if !reaped {
				_ = unix.Kill(pid, s.(unix.Signal))
			}
			mu.Unlock()
		}
	}()
	defer func() {
		signal.Stop(sigs)
		close(sigs)
		<-done
	}()
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("wait for %d: %w", pid, err)
		}
		break
	}
	var ws unix.WaitStatus
	mu.Lock()
	_, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	reaped = true
	mu.Unlock()
	if err != nil {
		return -1, fmt.Errorf("reap %d: %w", pid, err)
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}
