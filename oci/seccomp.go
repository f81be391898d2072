package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/oci/defaults"
)

// seccompProfile resolves ContainerConfig.Seccomp; privileged containers run
// unconfined, as in Docker and containerd.
func seccompProfile(p string, inline []byte, privileged bool) (*specs.LinuxSeccomp, error) {
	switch {
	case privileged || p == "" || p == "unconfined":
		return nil, nil
	case p == "runtime/default":
		return defaults.Seccomp(), nil
	case p == "inline":
		return parseSeccomp("given", inline)
	case strings.HasPrefix(p, "localhost/"):
		path := strings.TrimPrefix(p, "localhost/")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
		}
		return parseSeccomp(path, b)
	}
	return nil, fmt.Errorf("seccomp profile %q: want unconfined, runtime/default or localhost/<path>", p)
}

// parseSeccomp reads an OCI LinuxSeccomp profile; Docker's profiles are the
// same JSON (its per-architecture and conditional parts are not read).
func parseSeccomp(name string, b []byte) (*specs.LinuxSeccomp, error) {
	var s specs.LinuxSeccomp
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", name, err)
	}
	if s.DefaultAction == "" {
		return nil, fmt.Errorf("seccomp profile %s: no defaultAction", name)
	}
	return &s, nil
}
