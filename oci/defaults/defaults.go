// Package defaults holds the runtime spec every container starts from. It is
// apart from oci so that berth-runtime, which needs only this, does not link
// (and initialise at every start) the image-spec packages oci.BuildSpec uses.
package defaults

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultCapabilities are the capabilities a container gets unless told
// otherwise: Docker's and containerd's list.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// DefaultMaskedPaths and DefaultReadonlyPaths hide the kernel's knobs, as containerd does.
var (
	DefaultMaskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	DefaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// SpecVersion is the ociVersion Berth writes: 1.1.0, the newest that every
// runtime it drives accepts (crun 1.8 refuses 1.2.x; nothing we emit needs 1.2).
const SpecVersion = "1.1.0"

// DefaultPath is the PATH a container gets when its image sets none.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultMounts are the filesystems every container gets.
func DefaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// DefaultSpec is a complete spec for a container running sh from ./rootfs
// in new namespaces: the starting point Berth and "berth-runtime spec" share.
func DefaultSpec() *specs.Spec {
	caps := func() []string { return append([]string(nil), DefaultCapabilities...) }
	return &specs.Spec{
		Version: SpecVersion,
		Process: &specs.Process{
			Args: []string{"sh"},
			Env:  []string{DefaultPath, "TERM=xterm"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps(), Effective: caps(), Permitted: caps(),
			},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "berth",
		Mounts:   DefaultMounts(),
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			MaskedPaths:   append([]string(nil), DefaultMaskedPaths...),
			ReadonlyPaths: append([]string(nil), DefaultReadonlyPaths...),
		},
	}
}
