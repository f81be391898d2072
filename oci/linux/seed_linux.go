package linux

import (
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A new mount namespace is a copy of its creator's: on a node of a
// thousand pods every container's init copied ~3,000 host mounts at clone,
// scanned them at each bind and dropped them again when it detached the
// old root — the part of a container's start that grew with the node.
// A seed is a mount namespace that holds almost nothing (a read-only tmpfs
// root with /proc, for the init's exec, and an empty /rootfs): the init is
// cloned from a thread that joined it, so its namespace copies two mounts.
// What the container needs of the host's tree comes along as detached
// copies (open_tree), made in the host's namespace by create: the root
// filesystem and each bind mount's source. berthd makes one seed and keeps
// it open; berth-runtime reads where it is from MountSeedEnv.

// MountSeedEnv names a path of a seed (/proc/<pid>/fd/<n> of its holder).
// Without it, or where a container needs more of the host's tree than its
// mounts' sources (createContainer hooks, which run with the runtime's
// paths; user namespaces, whose devices are bound from the host), the init
// copies the host's namespace as before.
const MountSeedEnv = "BERTH_MOUNT_SEED"

// seedRootfs is where the init attaches the root filesystem in its copy of the seed.
const seedRootfs = "/rootfs"

// NewMountSeed makes a seed and returns it opened. The caller keeps the
// file open as long as containers may be created from it.
func NewMountSeed() (*os.File, error) {
	type res struct {
		f   *os.File
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, and no other
		// goroutine runs in the seed.
		runtime.LockOSThread()
		f, err := makeSeed()
		ch <- res{f, err}
	}()
	r := <-ch
	return r.f, r.err
}

func makeSeed() (*os.File, error) {
	if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
		return nil, fmt.Errorf("mount seed: unshare: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("mount seed: make / private: %w", err)
	}
	// Any directory will do to stack the tmpfs on in this private copy.
	const at = "/dev"
	if err := unix.Mount("seed", at, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755,size=16k"); err != nil {
		return nil, fmt.Errorf("mount seed: tmpfs: %w", err)
	}
	for _, d := range []string{"proc", seedRootfs[1:]} {
		if err := os.Mkdir(at+"/"+d, 0o755); err != nil {
			return nil, fmt.Errorf("mount seed: %w", err)
		}
	}
	if err := unix.Mount("proc", at+"/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("mount seed: proc: %w", err)
	}
	if err := pivotRoot(at); err != nil {
		return nil, fmt.Errorf("mount seed: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("mount seed: read-only: %w", err)
	}
	f, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return nil, fmt.Errorf("mount seed: %w", err)
	}
	return f, nil
}

// openSeed opens the seed at path, checking that it is a mount namespace
// (a path of a holder that has gone may now name anything).
func openSeed(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	typ, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil || typ != unix.CLONE_NEWNS {
		f.Close()
		return nil, fmt.Errorf("%s is not a mount namespace", path)
	}
	return f, nil
}

// seedFor opens o's seed and makes the copies of the host's tree the init
// will attach, when the container can be made from a seed; (nil, nil)
// when not, and the init copies the host's namespace as before.
func seedFor(o CreateOpts, s *specs.Spec, plan nsPlan, rootfs string, cg CgroupPaths) (*os.File, *seedMounts) {
	if o.MountSeed == "" || o.NoPivot || o.Self != "" || !seedable(s, plan) {
		return nil, nil
	}
	seed, err := openSeed(o.MountSeed)
	if err != nil {
		return nil, nil
	}
	view := openMountView(o.MountView)
	defer view.Close()
	sm, err := cloneForSeed(s, rootfs, cg, plan.newCgroup, view)
	if err != nil {
		// The copy of the host's namespace says what is wrong, if anything.
		seed.Close()
		return nil, nil
	}
	return seed, sm
}

// seedable says whether the container can be made from a seed.
func seedable(s *specs.Spec, plan nsPlan) bool {
	if plan.early || plan.cloneFlags&unix.CLONE_NEWNS == 0 || plan.cloneFlags&unix.CLONE_NEWUSER != 0 {
		return false
	}
	if s.Hooks != nil && len(s.Hooks.CreateContainer) > 0 {
		return false
	}
	// Shared propagation needs the rootfs's parent mount, which only the
	// host's copy has.
	if !slices.Contains([]string{"", "slave", "rslave", "private", "rprivate"}, s.Linux.RootfsPropagation) {
		return false
	}
	return staticSelf()
}

// staticSelf: the init's binary needs no loader, which the seed lacks. The
// kernel says so in the auxiliary vector (AT_BASE, where it put the
// interpreter, is 0 without one): no read of the binary on every create.
func staticSelf() bool {
	auxv, err := unix.Auxv()
	if err != nil {
		return false
	}
	for _, kv := range auxv {
		if kv[0] == atBase {
			return kv[1] == 0
		}
	}
	return false
}

// atBase is AT_BASE of <elf.h>.
const atBase = 7

// seedMounts are the detached copies of the host's tree an init made from
// a seed attaches, and the init's fd numbers of them: the root filesystem,
// each bind mount's source, and the cgroup directories mountCgroups binds.
type seedMounts struct {
	Rootfs int `json:"rootfs"`
	// Binds are by seedKey of the mount's index and source.
	Binds map[string]int `json:"binds,omitempty"`
	// files are create's side of the copies, in the order of place.
	files []*os.File
	place []func(fd int)
}

// seedKey names a bind's copy: mounts[i]'s source, or one of the cgroup
// directories a cgroup mount at mounts[i] binds (each attached copy is
// used up: two cgroup mounts need two of each).
func seedKey(i int, source string) string { return strconv.Itoa(i) + ":" + source }

// cloneForSeed makes the detached copies, their propagation set as the
// init's namespace would have made its own copies (slave or private), so
// that nothing mounted under them reaches the host.
func cloneForSeed(s *specs.Spec, rootfs string, cg CgroupPaths, newCgroupNS bool, view *mountView) (sm *seedMounts, err error) {
	sm = &seedMounts{Binds: map[string]int{}}
	defer func() {
		if err != nil {
			sm.Close()
		}
	}()
	prop := uint64(unix.MS_SLAVE)
	if s.Linux.RootfsPropagation == "private" || s.Linux.RootfsPropagation == "rprivate" {
		prop = unix.MS_PRIVATE
	}
	clone := func(src string, recursive bool, place func(fd int)) error {
		flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
		// Nothing can be mounted below a file: its recursive clone would
		// only scan every mount beside it (the pod's /etc/hosts sits in a
		// directory of the host's root filesystem, beside ~1,000 rootfs
		// mounts at a thousand pods).
		file := isFile(src)
		if recursive && !file {
			flags |= unix.AT_RECURSIVE
		}
		fd, err := -1, errNotInView
		if file {
			fd, err = view.clone(src, flags)
		}
		if err != nil { // not in the view: by the host's path
			fd, err = unix.OpenTree(unix.AT_FDCWD, src, flags)
		}
		if err != nil {
			return fmt.Errorf("clone %s: %w", src, err)
		}
		f := os.NewFile(uintptr(fd), src)
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Propagation: prop}); err != nil {
			f.Close()
			return fmt.Errorf("clone %s: propagation: %w", src, err)
		}
		sm.files, sm.place = append(sm.files, f), append(sm.place, place)
		return nil
	}
	if err := clone(rootfs, true, func(fd int) { sm.Rootfs = fd }); err != nil {
		return nil, fmt.Errorf("root.path: %w", err)
	}
	for i, m := range s.Mounts {
		flags, _, _, _ := parseMountOptions(m.Options)
		var err error
		var sources []string
		switch {
		case m.Type == "bind" || flags&unix.MS_BIND != 0:
			sources = []string{m.Source}
		case m.Type == "cgroup" || m.Type == "cgroup2":
			sources = cgroupBindSources(cg, newCgroupNS)
		}
		for _, src := range sources {
			if err == nil {
				key := seedKey(i, src)
				err = clone(src, flags&unix.MS_REC != 0, func(fd int) { sm.Binds[key] = fd })
			}
		}
		if err != nil {
			return nil, fmt.Errorf("mounts[%d] %s: %w", i, m.Destination, err)
		}
	}
	return sm, nil
}

// cgroupBindSources are the host directories mountCgroups binds.
func cgroupBindSources(cg CgroupPaths, newCgroupNS bool) []string {
	if cg.Unified != "" {
		if newCgroupNS {
			return nil
		}
		return []string{cg.Unified}
	}
	return slices.Compact(slices.Sorted(maps.Values(cg.V1)))
}

// passTo appends the copies to the init's inherited files and records the
// fd numbers they get there (ExtraFiles start at 3).
func (sm *seedMounts) passTo(extra *[]*os.File) {
	for i, f := range sm.files {
		*extra = append(*extra, f)
		sm.place[i](2 + len(*extra))
	}
}

// Close closes create's copies (the init has its own by then).
func (sm *seedMounts) Close() {
	if sm == nil {
		return
	}
	for _, f := range sm.files {
		f.Close()
	}
	sm.files = nil
}

// attachFd attaches the detached copy at fd on dest, creating dest to
// match it, and closes fd.
func attachFd(fd int, dest string) error {
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	if err := mkMountpoint(dest, st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
		return err
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dest, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach the copy of the source: %w", err)
	}
	return nil
}

// bindSource is a bind mount's source: a host path, or the init's fd of a
// detached copy of it (fd ≥ 0) when the init was made from a seed.
type bindSource struct {
	path string
	fd   int
}

// bindSource is mounts[i]'s source path, or a cgroup directory its cgroup
// mount binds.
func (ic *initConfig) bindSource(i int, path string) bindSource {
	if ic.Seed != nil {
		if fd, ok := ic.Seed.Binds[seedKey(i, path)]; ok {
			return bindSource{path, fd}
		}
	}
	return bindSource{path, -1}
}

// bindPath binds the host path source onto dest, creating dest to match.
func bindPath(source, dest string, flags uintptr) error {
	fi, err := os.Stat(source)
	if err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	if err := mkMountpoint(dest, fi.IsDir()); err != nil {
		return err
	}
	if err := unix.Mount(source, dest, "", unix.MS_BIND|(flags&unix.MS_REC), ""); err != nil {
		return fmt.Errorf("bind %s: %w", source, err)
	}
	return nil
}

// isFile: path is there and is no directory.
func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir()
}
