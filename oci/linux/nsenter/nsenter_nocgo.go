//go:build !cgo

package nsenter

import "errors"

// Enabled is false in a build without cgo: exec is then unavailable.
const Enabled = false

// Fork is unavailable without cgo: callers execute the binary instead.
func Fork(env []string, fds []int, cgroupFD int) (int, error) {
	return 0, errors.ErrUnsupported
}
