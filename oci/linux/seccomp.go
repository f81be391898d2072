package linux

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// seccompFilter is a compiled filter: classic BPF instructions, 8 bytes
// each, as the kernel's struct sock_filter lays them out. The runtime's
// parent compiles it (seccomp_cgo.go); the init or exec child only loads it.
type seccompFilter struct {
	Program []byte `json:"program"`
	// Flags are SECCOMP_FILTER_FLAG_* for the seccomp(2) call.
	Flags uint `json:"flags,omitempty"`
}

// loadSeccomp installs the filter on the calling thread, which then execs.
// It needs no_new_privs or CAP_SYS_ADMIN: the init calls it at the right moment.
func loadSeccomp(f *seccompFilter) error {
	if f == nil || len(f.Program) == 0 {
		return nil
	}
	if len(f.Program)%8 != 0 {
		return errors.New("linux.seccomp: malformed compiled filter")
	}
	prog := unix.SockFprog{
		Len:    uint16(len(f.Program) / 8),
		Filter: (*unix.SockFilter)(unsafe.Pointer(&f.Program[0])),
	}
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(f.Flags), uintptr(unsafe.Pointer(&prog)))
	if e != 0 {
		return fmt.Errorf("linux.seccomp: load filter: %w", e)
	}
	return nil
}

var errUnsupportedSeccomp = errors.New("seccomp needs berth-runtime built with cgo and libseccomp")

// ErrSeccompNeedsCgo: this binary cannot compile the container's seccomp
// profile (no cgo), and the container's state holds no compiled filter
// (made by an older berth-runtime): only berth-runtime itself can exec there.
var ErrSeccompNeedsCgo = errUnsupportedSeccomp
