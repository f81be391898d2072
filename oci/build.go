package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/oci/defaults"
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

// BuildSpec makes the runtime spec for a container of image img whose root
// filesystem is mounted at rootfs (read for /etc/passwd and /etc/group).
func BuildSpec(img ocispec.ImageConfig, c *ContainerConfig, rootfs string) (*specs.Spec, error) {
	s := defaults.DefaultSpec()
	s.Root = &specs.Root{Path: rootfs, Readonly: c.ReadonlyRootfs}
	s.Hostname = c.Hostname
	s.Annotations = c.Annotations
	p := s.Process
	p.NoNewPrivileges = c.NoNewPrivileges
	p.Terminal = c.Tty
	if cs := c.ConsoleSize; c.Tty && cs != nil && cs[0] > 0 && cs[1] > 0 {
		p.ConsoleSize = &specs.Box{Height: cs[0], Width: cs[1]}
	}

	p.Args = processArgs(img, c)
	if len(p.Args) == 0 {
		return nil, fmt.Errorf("no command: the image has no entrypoint or cmd and none was given")
	}
	p.Env = mergeEnv(img.Env, c.Env)
	p.Cwd = "/"
	if img.WorkingDir != "" {
		p.Cwd = img.WorkingDir
	}
	if c.WorkingDir != "" {
		p.Cwd = c.WorkingDir
	}
	if !filepath.IsAbs(p.Cwd) {
		return nil, fmt.Errorf("working dir %q must be absolute", p.Cwd)
	}
	user, err := resolveUser(rootfs, img.User, c)
	if err != nil {
		return nil, err
	}
	p.User = user
	if err := setCapabilities(p, c); err != nil {
		return nil, err
	}
	p.OOMScoreAdj = c.OOMScoreAdj
	for _, rl := range c.Rlimits {
		p.Rlimits = slices.DeleteFunc(p.Rlimits, func(d specs.POSIXRlimit) bool { return d.Type == rl.Type })
		p.Rlimits = append(p.Rlimits, rl)
	}

	l := s.Linux
	l.CgroupsPath = c.CgroupsPath
	l.Sysctl = c.Sysctls
	l.Namespaces = namespaces(c.Namespaces)
	if c.Namespaces.User != "" {
		l.UIDMappings, l.GIDMappings = c.Namespaces.UIDMappings, c.Namespaces.GIDMappings
	}
	if c.MaskedPaths != nil {
		l.MaskedPaths = c.MaskedPaths
	}
	if c.ReadonlyPaths != nil {
		l.ReadonlyPaths = c.ReadonlyPaths
	}
	if l.Seccomp, err = seccompProfile(c.Seccomp, c.SeccompProfile, c.Privileged); err != nil {
		return nil, err
	}
	if c.Privileged {
		l.MaskedPaths, l.ReadonlyPaths = nil, nil
		l.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	setResources(l.Resources, c.Resources)

	s.Mounts = mounts(c)
	for _, m := range c.Mounts {
		if m.Propagation == "rshared" {
			// A bidirectional mount propagates back to the host only if the
			// root it is made under stays shared (as containerd and CRI-O do).
			l.RootfsPropagation = "rshared"
		}
	}
	for _, d := range c.Devices {
		perms := d.Permissions
		if perms == "" {
			perms = "rwm"
		}
		dev, err := hostDevice(d.HostPath, d.ContainerPath)
		if err != nil {
			return nil, err
		}
		l.Devices = append(l.Devices, dev)
		major, minor := dev.Major, dev.Minor
		l.Resources.Devices = append(l.Resources.Devices, specs.LinuxDeviceCgroup{
			Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: perms,
		})
	}
	return s, nil
}

// processArgs follows Kubernetes: command replaces the entrypoint and drops
// the image's cmd; args alone replace the cmd.
func processArgs(img ocispec.ImageConfig, c *ContainerConfig) []string {
	switch {
	case len(c.Command) > 0:
		return append(slices.Clone(c.Command), c.Args...)
	case len(c.Args) > 0:
		return append(slices.Clone(img.Entrypoint), c.Args...)
	default:
		return append(slices.Clone(img.Entrypoint), img.Cmd...)
	}
}

// mergeEnv puts over the image's variables those of the container, keeping
// the image's order and a default PATH when neither sets one.
func mergeEnv(image, extra []string) []string {
	out := []string{}
	idx := map[string]int{}
	add := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			return
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range image {
		add(kv)
	}
	for _, kv := range extra {
		add(kv)
	}
	if _, ok := idx["PATH"]; !ok {
		out = append([]string{defaults.DefaultPath}, out...)
	}
	return out
}

func namespaces(n Namespaces) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace}}
	add := func(t specs.LinuxNamespaceType, path string, host bool) {
		if !host {
			ns = append(ns, specs.LinuxNamespace{Type: t, Path: path})
		}
	}
	add(specs.NetworkNamespace, n.Network, n.HostNetwork)
	add(specs.IPCNamespace, n.IPC, n.HostIPC)
	add(specs.UTSNamespace, n.UTS, n.HostNetwork)
	add(specs.PIDNamespace, n.PID, n.HostPID)
	add(specs.UserNamespace, n.User, n.User == "")
	return ns
}

// LinuxResources converts Berth's resources to the spec's, for a live update.
func LinuxResources(in Resources) *specs.LinuxResources {
	r := &specs.LinuxResources{}
	setResources(r, in)
	return r
}

func setResources(r *specs.LinuxResources, in Resources) {
	if in.MemoryLimit > 0 || in.MemorySwapLimit > 0 {
		r.Memory = &specs.LinuxMemory{}
		if in.MemoryLimit > 0 {
			r.Memory.Limit = &in.MemoryLimit
		}
		if in.MemorySwapLimit > 0 {
			r.Memory.Swap = &in.MemorySwapLimit
		}
	}
	if in.CPUShares > 0 || in.CPUQuota > 0 || in.CPUPeriod > 0 || in.CpusetCpus != "" || in.CpusetMems != "" {
		r.CPU = &specs.LinuxCPU{Cpus: in.CpusetCpus, Mems: in.CpusetMems}
		if in.CPUShares > 0 {
			v := uint64(in.CPUShares)
			r.CPU.Shares = &v
		}
		if in.CPUQuota > 0 {
			r.CPU.Quota = &in.CPUQuota
		}
		if in.CPUPeriod > 0 {
			v := uint64(in.CPUPeriod)
			r.CPU.Period = &v
		}
	}
	if in.PidsLimit > 0 {
		limit := in.PidsLimit
		r.Pids = &specs.LinuxPids{Limit: &limit}
	}
	for size, limit := range in.HugepageLimits {
		r.HugepageLimits = append(r.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: size, Limit: limit})
	}
	slices.SortFunc(r.HugepageLimits, func(a, b specs.LinuxHugepageLimit) int { return strings.Compare(a.Pagesize, b.Pagesize) })
	r.Unified = in.Unified
}

func mounts(c *ContainerConfig) []specs.Mount {
	ms := defaults.DefaultMounts()
	taken := map[string]bool{}
	var user []specs.Mount
	for _, m := range c.Mounts {
		dst := filepath.Clean(m.ContainerPath)
		taken[dst] = true
		if m.Tmpfs {
			user = append(user, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: tmpfsOptions(m)})
			continue
		}
		opts := []string{"rbind"}
		switch m.Propagation {
		case "rshared":
			opts = append(opts, "rshared")
		case "rslave":
			opts = append(opts, "rslave")
		default:
			opts = append(opts, "rprivate")
		}
		if m.RecursiveReadonly {
			opts = append(opts, "rro")
		} else if m.Readonly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		user = append(user, specs.Mount{Destination: dst, Type: "bind", Source: m.HostPath, Options: opts})
	}
	if c.ShmPath != "" && !taken["/dev/shm"] {
		ms = slices.DeleteFunc(ms, func(m specs.Mount) bool { return m.Destination == "/dev/shm" })
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: c.ShmPath, Options: []string{"rbind", "rprivate", "rw"}})
	}
	etc := make([]string, 0, len(c.EtcFiles))
	for dst := range c.EtcFiles {
		etc = append(etc, dst)
	}
	slices.Sort(etc)
	for _, dst := range etc {
		if taken[dst] {
			continue // the user's mount wins, as in Kubernetes
		}
		opts := []string{"rbind", "rprivate", "rw"}
		if c.ReadonlyRootfs {
			opts[2] = "ro"
		}
		ms = append(ms, specs.Mount{Destination: dst, Type: "bind", Source: c.EtcFiles[dst], Options: opts})
	}
	// A user's mount over a default one (say /dev/shm) replaces it.
	ms = slices.DeleteFunc(ms, func(m specs.Mount) bool { return taken[m.Destination] })
	// Parents before children, so /a is mounted before /a/b.
	all := append(ms, user...)
	slices.SortStableFunc(all, func(a, b specs.Mount) int {
		return strings.Count(filepath.Clean(a.Destination), "/") - strings.Count(filepath.Clean(b.Destination), "/")
	})
	return all
}

// tmpfsOptions are Docker's: nosuid, nodev and noexec unless the user's
// options say exec (or suid, dev), read-only if asked.
func tmpfsOptions(m Mount) []string {
	opts := []string{"nosuid", "nodev", "noexec"}
	for _, o := range m.TmpfsOptions {
		switch o {
		case "exec", "suid", "dev":
			opts = slices.DeleteFunc(opts, func(d string) bool { return d == "no"+o })
		case "noexec", "nosuid", "nodev":
		default:
			opts = append(opts, o)
		}
	}
	if m.Readonly {
		opts = append(opts, "ro")
	}
	return opts
}

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
