package linux

import (
	"path/filepath"
	"slices"
	"sort"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// GoInitEnv, set to 1 in berth-runtime's environment, gives every container
// the Go init (Init) even where the C init could serve: for tests of both,
// and as a way out should the C init ever be at fault.
const GoInitEnv = "BERTH_GO_INIT"

// initPlanEnv tells nsenter's constructor that the init's orders come as a
// plan (nsenter/initplan.h), not as the Go init's JSON.
const initPlanEnv = "_BERTH_INIT_PLAN"

// cInitServes says whether the C init can set up this container: a
// container that the Go init handles in a way the plan has no words for
// (hooks, personality, shared root propagation) gets the Go init. So does any spec the Go init would
// refuse, so that the refusal reads the same whichever init would have run.
func cInitServes(o CreateOpts, s *specs.Spec, plan nsPlan) bool {
	if !o.NsenterLinked || o.GoInit {
		return false
	}
	if plan.cloneFlags&unix.CLONE_NEWNS == 0 && !plan.joinsMount {
		return false // mounts in the host's own namespace: the Go init's business, if anyone's
	}
	if h := s.Hooks; h != nil && len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer)+len(h.StartContainer) > 0 {
		return false
	}
	if s.Linux.Personality != nil {
		return false
	}
	if !slices.Contains([]string{"", "slave", "rslave", "private", "rprivate"}, s.Linux.RootfsPropagation) {
		return false // a shared root needs the rootfs's parent mount made private (propagation_linux.go)
	}
	if (s.Hostname != "" || s.Domainname != "") && plan.cloneFlags&unix.CLONE_NEWUTS == 0 {
		return false
	}
	for k := range s.Linux.Sysctl {
		if validSysctlKey(k) != nil {
			return false
		}
	}
	if s.Process.Cwd != "" && !filepath.IsAbs(s.Process.Cwd) {
		return false
	}
	if _, err := ioPriority(s.Process.IOPriority); err != nil {
		return false
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return false
		}
	}
	for _, d := range s.Linux.Devices {
		if _, ok := deviceTypes[d.Type]; !ok {
			return false
		}
	}
	return true
}

// deviceTypes are linux.devices' types as mknod's file types.
var deviceTypes = map[string]uint32{"c": unix.S_IFCHR, "u": unix.S_IFCHR, "b": unix.S_IFBLK, "p": unix.S_IFIFO}

// initPlan writes down, for the C init, the steps setupContainer takes in
// the Go init, in the same order: everything the parent knows (each mount's
// flags, the cgroup directories to bind, the seed's copies) is decided
// here; what depends on the container's tree (a symlink on the way to a
// mount point, whether a masked path is a directory) is left to the init.
// The layout is nsenter/initplan.h's; the process's part is execPlan's.
// ok is false when the plan cannot say it: the Go init runs then.
func initPlan(ic *initConfig, fifoFd int) (plan []byte, ok bool) {
	s := ic.spec()
	var w planFields
	hostname := s.Hostname != ""
	domain := s.Domainname != ""
	w.add(flag(ic.NewCgroupNS), flag(hostname), s.Hostname, flag(domain), s.Domainname, num(uint64(fifoFd)))
	// A joined mount namespace's root is the container's already: nothing
	// is mounted in it (setupRootfs).
	w.add(flag(ic.JoinsMountNS))
	if !ic.JoinsMountNS {
		rootfsFields(ic, &w)
	}
	p := s.Process
	oom := ""
	if p.OOMScoreAdj != nil {
		oom = strconv.Itoa(*p.OOMScoreAdj)
	}
	prio, _ := ioPriority(p.IOPriority)
	w.add(oom, num(uint64(prio)))
	proc, err := processFields(p, ic.Seccomp)
	if err != nil {
		return nil, false
	}
	w.add(proc...)
	b, err := w.encode()
	return b, err == nil
}

// rootfsFields are setupRootfs's steps: the root's propagation and bind,
// the mounts, /dev, pivot_root, sysctls, masked and read-only paths.
func rootfsFields(ic *initConfig, w *planFields) {
	s := ic.spec()

	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := s.Linux.RootfsPropagation; p != "" {
		prop = propagationNames[p]
	}
	rootFd := -1
	if ic.Seed != nil {
		rootFd = ic.Seed.Rootfs
	}
	w.add(ic.Rootfs, strconv.Itoa(rootFd), num(uint64(prop)))

	var ops [][]string
	op := func(f ...string) { ops = append(ops, f) }
	bind := func(what string, src bindSource, dest string, flags uintptr) {
		op("b", what, src.path, strconv.Itoa(src.fd), dest, num(uint64(flags)))
	}
	devIsTmpfs := false
	for i, m := range s.Mounts {
		what := "mounts[" + strconv.Itoa(i) + "] " + m.Destination
		flags, props, data, rro := parseMountOptions(m.Options)
		if m.Type == "bind" {
			flags |= unix.MS_BIND
		}
		switch {
		case flags&unix.MS_BIND != 0:
			bind(what, ic.bindSource(i, m.Source), m.Destination, flags)
		case m.Type == "cgroup" || m.Type == "cgroup2":
			cgroupOps(ic, i, what, m.Destination, flags, op, bind)
			continue // as mountCgroups: no propagation or rro of its own
		default:
			op("m", what, m.Source, m.Destination, m.Type, num(uint64(flags)), data)
		}
		for _, p := range props {
			op("p", what, m.Destination, num(uint64(p)))
		}
		if rro {
			op("r", what, m.Destination)
		}
		if filepath.Clean(m.Destination) == "/dev" && m.Type == "tmpfs" {
			devIsTmpfs = true
		}
	}
	device := func(what string, d specs.LinuxDevice, perm uint32) {
		var uid, gid uint32
		if d.UID != nil {
			uid = *d.UID
		}
		if d.GID != nil {
			gid = *d.GID
		}
		op("d", what, d.Path, num(uint64(deviceTypes[d.Type]|perm)), num(uint64(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))), num(uint64(uid)), num(uint64(gid)))
	}
	if devIsTmpfs {
		for _, d := range defaultDevices {
			device("default device "+d.Path, d, 0o666)
		}
		for _, l := range [][2]string{{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"}, {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"}} {
			op("l", "symlink "+l[1], l[0], l[1])
		}
		op("t", "symlink /dev/ptmx")
	}
	for _, d := range s.Linux.Devices {
		perm := uint32(0o666)
		if d.FileMode != nil {
			perm = uint32(d.FileMode.Perm())
		}
		device("linux.devices "+d.Path, d, perm)
	}
	w.add(num(uint64(len(ops))))
	for _, o := range ops {
		w.add(o...)
	}

	w.add(flag(ic.NoPivot))
	keys := make([]string, 0, len(s.Linux.Sysctl))
	for k := range s.Linux.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.add(num(uint64(len(keys))))
	for _, k := range keys {
		w.add(k, sysctlPath(k), s.Linux.Sysctl[k])
	}
	w.add(num(uint64(len(s.Linux.MaskedPaths))))
	w.add(s.Linux.MaskedPaths...)
	w.add(num(uint64(len(s.Linux.ReadonlyPaths))))
	w.add(s.Linux.ReadonlyPaths...)
	final := uint64(0)
	if prop != unix.MS_SLAVE|unix.MS_REC && prop != unix.MS_SLAVE {
		final = uint64(prop)
	}
	w.add(flag(s.Root.Readonly), num(final))
}

// cgroupOps are mountCgroups' steps: a cgroup2 mount or a bind of the
// container's unified directory; on v1 a tmpfs with a bind per hierarchy.
func cgroupOps(ic *initConfig, i int, what, dest string, flags uintptr, op func(...string), bind func(string, bindSource, string, uintptr)) {
	cg := ic.Cgroup
	if cg.Unified != "" {
		if ic.NewCgroupNS {
			op("m", what, "cgroup2", dest, "cgroup2", num(uint64(flags)), "")
			return
		}
		bind(what, ic.bindSource(i, cg.Unified), dest, flags|unix.MS_BIND)
		return
	}
	op("m", what, "tmpfs", dest, "tmpfs", num(uint64(flags&^unix.MS_RDONLY)), "mode=755")
	for _, d := range cgroupV1Dirs(cg.V1) {
		bind(what, ic.bindSource(i, d.dir), filepath.Join(dest, d.name), flags|unix.MS_BIND)
		if len(d.ctrls) > 1 {
			for _, c := range d.ctrls {
				op("l", what, d.name, filepath.Join(dest, c))
			}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		op("x", what, dest, num(unix.MS_RDONLY))
	}
}

// num and flag write a plan's numbers and booleans.
func num(n uint64) string { return strconv.FormatUint(n, 10) }

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
