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

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/oci/linux"
)

// startPause starts PID 1 of the pod's shared PID namespace: berth-runtime
// in its pause mode (C, no Go runtime), in the pod's network, IPC and UTS
// namespaces. It is started from a thread that first joins those
// namespaces; the thread is then discarded.
func startPause(bin, sandboxDir string, ns map[string]string) (int, uint64, error) {
	type res struct {
		cmd *exec.Cmd
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		for kind, flag := range map[string]int{"net": unix.CLONE_NEWNET, "ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS} {
			if p := ns[kind]; p != "" {
				if err := setnsPath(p, flag); err != nil {
					ch <- res{nil, err}
					return
				}
			}
		}
		cmd, err := spawnPause(bin, sandboxDir, &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID})
		ch <- res{cmd, err}
	}()
	r := <-ch
	if r.err != nil {
		return 0, 0, r.err
	}
	return recordPause(sandboxDir, r.cmd.Process.Pid)
}

// spawnPause starts berth-runtime's pause mode with attr's namespaces.
// Its argument is the sandbox's directory, so that ps says whose it is.
func spawnPause(bin, sandboxDir string, attr *syscall.SysProcAttr) (*exec.Cmd, error) {
	cmd := exec.Command(bin)
	cmd.Args = []string{"berth-pause", sandboxDir}
	cmd.Env = []string{"_BERTH_PAUSE=1"}
	attr.Setsid = true
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pod pause %s: %w", bin, err)
	}
	go func() { _ = cmd.Wait() }() // reap it when it ends while we run
	return cmd, nil
}

// recordPause notes the pause's identity (pid and start time) in the
// sandbox directory, for the start-up sweep should berthd die before the
// record is written.
func recordPause(sandboxDir string, pid int) (int, uint64, error) {
	start, err := linux.ProcessStartTime(pid)
	if err != nil {
		return 0, 0, fmt.Errorf("pod pause exited at once: %w", err)
	}
	if err := atomicfile.WriteSynced(filepath.Join(sandboxDir, pauseFile), []byte(fmt.Sprintf("%d %d\n", pid, start)), 0o600); err != nil {
		stopPause(pid, start)
		return 0, 0, fmt.Errorf("pod pause: %w", err)
	}
	return pid, start, nil
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
	if pid <= 0 || linux.SignalProcess(pid, start, unix.SIGKILL) != nil {
		return
	}
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
