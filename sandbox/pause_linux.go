package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/linux"
)

// startPause starts PID 1 of the pod's shared PID namespace: berth-runtime
// in its pause mode (C, no Go runtime), in the pod's network, IPC and UTS
// namespaces. It is started from a thread that first joins those
// namespaces; the thread is then discarded.
// Its argument is the sandbox's directory, so that ps says whose it is.
func startPause(bin, sandboxDir string, ns map[string]string) (int, uint64, error) {
	type res struct {
		pid int
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		for kind, flag := range map[string]int{"net": unix.CLONE_NEWNET, "ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS} {
			if p := ns[kind]; p != "" {
				if err := setnsPath(p, flag); err != nil {
					ch <- res{0, err}
					return
				}
			}
		}
		cmd := exec.Command(bin)
		cmd.Args = []string{"berth-pause", sandboxDir}
		cmd.Env = []string{"_BERTH_PAUSE=1"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID, Setsid: true}
		if err := cmd.Start(); err != nil {
			ch <- res{0, fmt.Errorf("start pod pause %s: %w", bin, err)}
			return
		}
		go func() { _ = cmd.Wait() }() // reap it when it ends while we run
		ch <- res{cmd.Process.Pid, nil}
	}()
	r := <-ch
	if r.err != nil {
		return 0, 0, r.err
	}
	start, err := linux.ProcessStartTime(r.pid)
	if err != nil {
		return 0, 0, fmt.Errorf("pod pause exited at once: %w", err)
	}
	// For the start-up sweep, should berthd die before the record is written.
	if err := os.WriteFile(filepath.Join(sandboxDir, pauseFile), []byte(fmt.Sprintf("%d %d\n", r.pid, start)), 0o600); err != nil {
		stopPause(r.pid, start)
		return 0, 0, fmt.Errorf("pod pause: %w", err)
	}
	return r.pid, start, nil
}

const pauseFile = "pause.pid"

// readPausePid reads what startPause wrote in dir.
func readPausePid(dir string) (pid int, start uint64, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, pauseFile))
	if err != nil {
		return 0, 0, false
	}
	_, err = fmt.Sscanf(string(b), "%d %d", &pid, &start)
	return pid, start, err == nil && pid > 0
}

// stopPause ends the pause (and with it whatever the pod's PID namespace
// still holds), if it is still the process we started.
func stopPause(pid int, start uint64) {
	if pid <= 0 || !linux.ProcessAlive(pid, start) {
		return
	}
	_ = unix.Kill(pid, unix.SIGKILL)
	for i := 0; i < 500 && linux.ProcessAlive(pid, start); i++ {
		time.Sleep(2 * time.Millisecond)
	}
}

func setnsPath(path string, flag int) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, flag); err != nil {
		return fmt.Errorf("join namespace %s: %w", path, err)
	}
	return nil
}
