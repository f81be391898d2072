package linux

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// SignalProcess sends sig to pid only if it is still the process that
// started at start (field 22 of its stat; 0 for any): a pidfd holds the
// process while its identity is checked, so that a pid reused by another
// process — berthd, a shim, after a crash — is never signalled. ESRCH when
// the process is gone.
func SignalProcess(pid int, start uint64, sig unix.Signal) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ENOSYS) {
		// Before Linux 5.3: check, then signal (the window is small).
		if !processAlive(pid, start) {
			return unix.ESRCH
		}
		return unix.Kill(pid, sig)
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if !processAlive(pid, start) {
		return unix.ESRCH // another process has the pid now, or it is a zombie
	}
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}

// SignalChildOf sends sig to pid only while it is a child of one of parents,
// held by a pidfd while that is checked: how a process known only by a pid
// file (an exec'd process, whose parent is the runtime's exec) is signalled
// without hitting another process that has since been given the pid.
func SignalChildOf(pid int, sig unix.Signal, parents ...int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ppid, err := parentPid(pid)
	if err != nil || !slices.Contains(parents, ppid) {
		return unix.ESRCH
	}
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}

// parentPid reads field 4 of /proc/<pid>/stat.
func parentPid(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return strconv.Atoi(string(f[1]))
}
