//go:build cgo

// Package nsenter holds the C constructor that joins a running container's
// namespaces before the Go runtime starts (see nsenter.c), and Fork, which
// does the same in a fork. berth-runtime imports it; nothing else should.
package nsenter

/*
#cgo CFLAGS: -Wall -O2
#include <stdlib.h>
int berth_fork(char **env, int *fds, int nfds, int cgroup_fd);
*/
import "C"

import "unsafe"

// Enabled reports that the constructor is linked in.
const Enabled = true

// Fork does in a fork of this process what the constructor does in a new
// execution of the binary (see berth_fork in nsenter.c): fds[i] becomes
// the child's fd i, env its constructor's variables; cgroupFD (-1 for
// none) a cgroup2 directory the child begins in. It returns the child's PID.
func Fork(env []string, fds []int, cgroupFD int) (int, error) {
	cenv := make([]*C.char, len(env)+1)
	for i, e := range env {
		cenv[i] = C.CString(e)
	}
	defer func() {
		for _, p := range cenv[:len(env)] {
			C.free(unsafe.Pointer(p))
		}
	}()
	cfds := make([]C.int, len(fds)+1)
	for i, fd := range fds {
		cfds[i] = C.int(fd)
	}
	pid, err := C.berth_fork(&cenv[0], &cfds[0], C.int(len(fds)), C.int(cgroupFD))
	if pid < 0 {
		return 0, err
	}
	return int(pid), nil
}
