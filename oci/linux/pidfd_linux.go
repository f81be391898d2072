package linux

import (
	"errors"

	"golang.org/x/sys/unix"
)

// signalProcess sends sig to pid only if it is still the process that
// started at start (field 22 of its stat; 0 for any): a pidfd holds the
// process while its identity is checked, so that a pid reused by another
// process — berthd, a shim, after a crash — is never signalled. ESRCH when
// the process is gone.
func signalProcess(pid int, start uint64, sig unix.Signal) error {
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
