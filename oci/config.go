package oci

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Mount is a bind mount from the host into the container, or a tmpfs.
type Mount struct {
	ContainerPath string
	HostPath      string
	Readonly      bool
	// Tmpfs makes this a tmpfs of its own (no HostPath), with TmpfsOptions
	// ("size=64m", "mode=1777", "exec", ...) after Docker's defaults
	// (nosuid, nodev, noexec).
	Tmpfs        bool
	TmpfsOptions []string
	// RecursiveReadonly makes every mount under the bind read-only too (rro).
	RecursiveReadonly bool
	// Image, when set, makes this an image volume: the image (a reference
	// the image store resolves) mounted read-only, ImageSubPath of it at
	// ContainerPath. The containers service fills HostPath in.
	Image, ImageSubPath string
	// Propagation is "private" (default), "rslave" or "rshared".
	Propagation string
	// UIDMappings and GIDMappings, in a pod with its own user namespace
	// (and equal to its mappings), idmap the bind through that namespace,
	// so that the pod's root owns what the host's root owns there. The
	// containers service makes the idmapped mount and fills HostPath in.
	UIDMappings, GIDMappings []specs.LinuxIDMapping
}

// Device is a host device made available in the container.
type Device struct {
	ContainerPath, HostPath, Permissions string
}

// Resources are a container's cgroup limits; zero means unset.
type Resources struct {
	CPUPeriod, CPUQuota, CPUShares int64
	MemoryLimit, MemorySwapLimit   int64
	CpusetCpus, CpusetMems         string
	PidsLimit                      int64
	Unified                        map[string]string
	HugepageLimits                 map[string]uint64
}

// Namespaces says which namespaces a container joins. A path joins that
// namespace; "" with the Host flag set shares the host's; otherwise a new one.
type Namespaces struct {
	Network, IPC, UTS string
	// PID is a path to join, or "" for a new PID namespace unless HostPID.
	PID                           string
	HostNetwork, HostIPC, HostPID bool
	// PodPID asks for the pod's shared PID namespace, when it has one;
	// TargetPID for the PID namespace of another container (by ID).
	PodPID    bool
	TargetPID string
	// User joins the pod's user namespace at that path, whose mappings
	// UIDMappings and GIDMappings repeat (runc and crun want them).
	User                     string
	UIDMappings, GIDMappings []specs.LinuxIDMapping
}

// ContainerConfig is everything about a container that is not in its image,
// in Berth's own terms: the CRI and Docker front ends translate to it.
type ContainerConfig struct {
	// Command replaces the image's entrypoint; Args its cmd (Kubernetes' rules).
	Command, Args []string
	WorkingDir    string
	Env           []string // KEY=VALUE, after the image's
	Hostname      string
	Mounts        []Mount
	Devices       []Device
	Annotations   map[string]string

	Privileged     bool
	ReadonlyRootfs bool
	// User: RunAsUser wins over Username, which wins over the image's user.
	RunAsUser          *int64
	RunAsGroup         *int64
	Username           string
	SupplementalGroups []int64
	// StrictSupplementalGroups leaves out the groups the image's /etc/group
	// gives the user (CRI's SupplementalGroupsPolicy Strict).
	StrictSupplementalGroups bool
	NoNewPrivileges          bool
	AddCapabilities          []string
	DropCapabilities         []string
	// MaskedPaths and ReadonlyPaths: nil means the defaults.
	MaskedPaths, ReadonlyPaths []string

	Resources   Resources
	OOMScoreAdj *int
	Sysctls     map[string]string
	CgroupsPath string
	Namespaces  Namespaces
	// ShmPath is bound at /dev/shm (a pod's shared tmpfs) when set.
	ShmPath string
	// EtcFiles binds files such as /etc/hosts and /etc/resolv.conf (container path → host path).
	EtcFiles map[string]string
	// Tty gives the process a terminal; ConsoleSize, if set, its first
	// size (rows, columns), so that the process never sees 0x0.
	Tty         bool
	ConsoleSize *[2]uint
	// Seccomp is "" or "unconfined" (no filter), "runtime/default" (Berth's
	// profile), "localhost/<path>" (an OCI LinuxSeccomp JSON file) or
	// "inline" (SeccompProfile: the JSON itself, as Docker's CLI sends it).
	Seccomp        string
	SeccompProfile []byte
	// Rlimits replace the defaults of the same type ("RLIMIT_NOFILE").
	Rlimits []specs.POSIXRlimit
}
