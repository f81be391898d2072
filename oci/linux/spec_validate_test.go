package linux

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestValidateRefusesWhatItCannotHonour: fields an NRI plugin or a caller
// may set that berth-runtime does not implement fail the container, naming
// the field, rather than run it without them.
func TestValidateRefusesWhatItCannotHonour(t *testing.T) {
	base := func() *specs.Spec {
		return &specs.Spec{Root: &specs.Root{Path: "rootfs"}, Process: &specs.Process{Args: []string{"true"}}, Linux: &specs.Linux{}}
	}
	if err := validateSpec(base()); err != nil {
		t.Fatalf("a plain spec: %v", err)
	}
	for field, edit := range map[string]func(*specs.Spec){
		"linux.netDevices":   func(s *specs.Spec) { s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth9": {}} },
		"linux.memoryPolicy": func(s *specs.Spec) { s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: "MPOL_BIND"} },
		"linux.intelRdt":     func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{} },
		"process.scheduler":  func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{} },
	} {
		s := base()
		edit(s)
		if err := validateSpec(s); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v, want a refusal naming it", field, err)
		}
	}
}
