package oci

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/oci/defaults"
	"github.com/berth-runtime/berth/oci/linux"
)

func setCapabilities(p *specs.Process, c *ContainerConfig) error {
	caps := slices.Clone(defaults.DefaultCapabilities)
	if c.Privileged {
		caps = linux.GrantableCapabilities()
	}
	norm := func(n string) string {
		n = strings.ToUpper(n)
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		return n
	}
	for _, a := range c.AddCapabilities {
		if strings.EqualFold(a, "ALL") {
			caps = linux.GrantableCapabilities()
			continue
		}
		if n := norm(a); !slices.Contains(caps, n) {
			if !slices.Contains(AllCapabilities(), n) {
				return fmt.Errorf("add capability %q: unknown capability", a)
			}
			caps = append(caps, n)
		}
	}
	for _, d := range c.DropCapabilities {
		if strings.EqualFold(d, "ALL") {
			caps = nil
			continue
		}
		n := norm(d)
		caps = slices.DeleteFunc(caps, func(x string) bool { return x == n })
	}
	p.Capabilities = &specs.LinuxCapabilities{
		Bounding: caps, Effective: slices.Clone(caps), Permitted: slices.Clone(caps),
	}
	// A non-root user gets no effective capabilities from the bounding set
	// alone, as with Docker and containerd.
	if p.User.UID != 0 {
		p.Capabilities.Effective, p.Capabilities.Permitted = nil, nil
	}
	return nil
}

// AllCapabilities lists every capability Berth knows, for privileged containers.
func AllCapabilities() []string { return linux.KnownCapabilities() }
