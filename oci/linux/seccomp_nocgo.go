//go:build !cgo

package linux

import specs "github.com/opencontainers/runtime-spec/specs-go"

// SeccompSupported is false without cgo: libseccomp compiles the filters.
const SeccompSupported = false

func compileSeccomp(s *specs.LinuxSeccomp) (*seccompFilter, error) {
	if s == nil {
		return nil, nil
	}
	return nil, errUnsupportedSeccomp
}
