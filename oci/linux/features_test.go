package linux

import (
	"slices"
	"testing"
)

// features must claim only what works: every hook, user namespaces;
// seccomp when built with libseccomp; both cgroup versions.
func TestFeaturesClaimOnlyWhatWorks(t *testing.T) {
	f := Features()
	if len(f.Hooks) != 6 || !slices.Contains(f.Hooks, "createContainer") {
		t.Errorf("hooks: %v", f.Hooks)
	}
	if !slices.Contains(f.Linux.Namespaces, "user") || !slices.Contains(f.Linux.Namespaces, "pid") {
		t.Errorf("namespaces: %v", f.Linux.Namespaces)
	}
	if *f.Linux.Seccomp.Enabled != SeccompSupported {
		t.Errorf("seccomp enabled %v, built with it %v", *f.Linux.Seccomp.Enabled, SeccompSupported)
	}
	if !*f.Linux.Cgroup.V1 || !*f.Linux.Cgroup.V2 || *f.Linux.Cgroup.Systemd {
		t.Errorf("cgroup: %+v", f.Linux.Cgroup)
	}
	if !slices.Contains(f.MountOptions, "rbind") || !slices.Contains(f.MountOptions, "rslave") {
		t.Errorf("mount options: %v", f.MountOptions)
	}
}
