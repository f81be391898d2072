package linux

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features describes what berth-runtime implements, for "berth-runtime
// features": only what works, so that callers can rely on it.
func Features() *features.Features {
	t := true
	f := false
	opts := make([]string, 0, len(mountFlagNames)+len(propagationNames))
	for o := range mountFlagNames {
		opts = append(opts, o)
	}
	for o := range propagationNames {
		opts = append(opts, o)
	}
	opts = append(opts, "rro") // recursive read-only, through mount_setattr (5.12+)
	slices.Sort(opts)
	var ns []string
	for n := range nsFlags {
		if n != specs.TimeNamespace {
			ns = append(ns, string(n))
		}
	}
	slices.Sort(ns)
	seccomp := &features.Seccomp{Enabled: &f}
	if SeccompSupported {
		seccomp = &features.Seccomp{
			Enabled: &t,
			Actions: []string{"SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP",
				"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG"},
			Operators: []string{"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
				"SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"},
			Archs:          []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"},
			KnownFlags:     []string{"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"},
			SupportedFlags: []string{"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"},
		}
	}
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  opts,
		Linux: &features.Linux{
			Namespaces:   ns,
			Capabilities: KnownCapabilities(),
			Cgroup:       &features.Cgroup{V1: &t, V2: &t, Systemd: &f, SystemdUser: &f, Rdma: &f},
			Seccomp:      seccomp,
			Apparmor:     &features.Apparmor{Enabled: &f},
			Selinux:      &features.Selinux{Enabled: &f},
			IntelRdt:     &features.IntelRdt{Enabled: &f},
		},
	}
}
