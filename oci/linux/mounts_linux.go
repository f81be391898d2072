package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

type mountFlag struct {
	clear bool
	flag  uintptr
}

var mountFlagNames = map[string]mountFlag{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
	"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
	"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"silent": {false, unix.MS_SILENT}, "loud": {true, unix.MS_SILENT},
}

var propagationNames = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parseMountOptions splits options into flags, propagation flags and fs
// data; rro (recursive read-only, mount_setattr) is reported apart.
func parseMountOptions(opts []string) (flags uintptr, prop []uintptr, data string, rro bool) {
	var d []string
	for _, o := range opts {
		if o == "rro" {
			rro = true
			continue
		}
		if f, ok := mountFlagNames[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if p, ok := propagationNames[o]; ok {
			prop = append(prop, p)
			continue
		}
		d = append(d, o)
	}
	return flags, prop, strings.Join(d, ","), rro
}

// setupRootfs builds the container's root filesystem and pivots into it.
// beforePivot runs once the mounts are made, before pivot_root (hooks).
func setupRootfs(ic *initConfig, beforePivot func() error) error {
	s := ic.spec()
	if ic.JoinsMountNS {
		// The namespace's root is the container's, set up by whoever made
		// it; setns put us there. Mounting into it would change it for
		// every process that shares it.
		return beforePivot()
	}
	unix.Umask(0)
	defer unix.Umask(0o022)

	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := s.Linux.RootfsPropagation; p != "" {
		var ok bool
		if prop, ok = propagationNames[p]; !ok {
			return fmt.Errorf("linux.rootfsPropagation: unknown value %q", p)
		}
	}
	// Our mounts must not propagate back to the host's mount namespace.
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("make / %s: %w", s.Linux.RootfsPropagation, err)
	}
	// The mount holding the root filesystem must not be shared: pivot_root
	// refuses a shared parent, and the bind below would propagate to the
	// host. Under a shared root (rootfsPropagation rshared, for bidirectional
	// volumes) it is made private alone, in this namespace only. After a
	// recursive slave or private (the default rslave), no mount is shared:
	// the search, which has the kernel format the whole mount table (~3 ms
	// with the 3,000 mounts of a node of a thousand pods), is skipped.
	if prop&unix.MS_REC == 0 || prop&unix.MS_SHARED != 0 {
		if err := parentMountPrivate(ic.Rootfs); err != nil {
			return err
		}
	}
	// pivot_root needs the new root to be a mount point.
	if ic.Seed != nil {
		if err := attachFd(ic.Seed.Rootfs, ic.Rootfs); err != nil {
			return fmt.Errorf("root.path: %w", err)
		}
	} else if err := unix.Mount(ic.Rootfs, ic.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind root.path %s: %w", ic.Rootfs, err)
	}
	devIsTmpfs := false
	for i, m := range s.Mounts {
		if err := mountEntry(ic, i, m); err != nil {
			return fmt.Errorf("mounts[%d] %s: %w", i, m.Destination, err)
		}
		if filepath.Clean(m.Destination) == "/dev" && m.Type == "tmpfs" {
			devIsTmpfs = true
		}
	}
	if devIsTmpfs {
		if err := setupDev(ic.Rootfs); err != nil {
			return err
		}
	}
	for _, d := range s.Linux.Devices {
		if err := makeDevice(ic.Rootfs, d); err != nil {
			return fmt.Errorf("linux.devices %s: %w", d.Path, err)
		}
	}
	if err := beforePivot(); err != nil {
		return err
	}
	if err := enterRoot(ic.Rootfs, ic.NoPivot); err != nil {
		return err
	}
	// Before readonlyPaths makes /proc/sys read-only.
	if err := applySysctls(s.Linux.Sysctl); err != nil {
		return err
	}
	for _, p := range s.Linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return fmt.Errorf("linux.maskedPaths %s: %w", p, err)
		}
	}
	for _, p := range s.Linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return fmt.Errorf("linux.readonlyPaths %s: %w", p, err)
		}
	}
	if s.Root.Readonly {
		if err := remountReadonly("/", false); err != nil {
			return fmt.Errorf("root.readonly: %w", err)
		}
	}
	if prop != unix.MS_SLAVE|unix.MS_REC && prop != unix.MS_SLAVE {
		if err := unix.Mount("", "/", "", prop, ""); err != nil {
			return fmt.Errorf("linux.rootfsPropagation %s: %w", s.Linux.RootfsPropagation, err)
		}
	}
	return nil
}

// inRoot resolves a container path inside rootfs, following symlinks as if
// rootfs were /: an image's symlink can never send a mount outside it.
func inRoot(rootfs, p string) (string, error) {
	return securejoin.SecureJoin(rootfs, p)
}

func mountEntry(ic *initConfig, i int, m specs.Mount) error {
	if !filepath.IsAbs(m.Destination) {
		return errors.New("destination must be absolute")
	}
	dest, err := inRoot(ic.Rootfs, m.Destination)
	if err != nil {
		return err
	}
	flags, props, data, rro := parseMountOptions(m.Options)
	if m.Type == "bind" {
		flags |= unix.MS_BIND
	}
	switch {
	case flags&unix.MS_BIND != 0:
		if err := bindMount(ic.bindSource(i, m.Source), dest, flags); err != nil {
			return err
		}
	case m.Type == "cgroup" || m.Type == "cgroup2":
		return mountCgroups(ic, i, dest, flags)
	default:
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.Source, dest, m.Type, flags, data); err != nil {
			return fmt.Errorf("mount %s (%s): %w", m.Source, m.Type, err)
		}
	}
	for _, p := range props {
		if err := unix.Mount("", dest, "", p, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	if rro {
		// Read-only all the way down, submounts included (Linux 5.12+).
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(-1, dest, unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("rro: %w", err)
		}
	}
	return nil
}

// bindMount binds source onto dest, creating dest as a file or directory to
// match, then applies flags such as ro, which a first bind ignores.
func bindMount(source bindSource, dest string, flags uintptr) error {
	if source.fd >= 0 {
		if err := attachFd(source.fd, dest); err != nil {
			return fmt.Errorf("bind %s: %w", source.path, err)
		}
	} else if err := bindPath(source.path, dest, flags); err != nil {
		return err
	}
	if extra := flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); extra != 0 {
		if err := remountFlags(dest, extra); err != nil {
			return err
		}
	}
	return nil
}

func mkMountpoint(dest string, dir bool) error {
	if dir {
		return os.MkdirAll(dest, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// remountFlags remounts a bind mount with flags, keeping the flags the
// kernel would refuse to clear (nosuid, nodev, noexec already set).
func remountFlags(dest string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dest, &st); err != nil {
		return err
	}
	keep := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY)
	if err := unix.Mount("", dest, "", unix.MS_BIND|unix.MS_REMOUNT|keep|flags, ""); err != nil {
		return fmt.Errorf("remount %s: %w", dest, err)
	}
	return nil
}

func remountReadonly(p string, recursive bool) error {
	f := uintptr(unix.MS_RDONLY)
	if recursive {
		f |= unix.MS_REC
	}
	return remountFlags(p, f)
}

// pivotRoot makes rootfs the root and detaches the old one, using
// pivot_root(".", ".") so no directory for the old root is needed.
// enterRoot makes rootfs the root: pivot_root, which leaves nothing of the
// host's tree reachable; or, when asked (--no-pivot) or where pivot_root
// cannot work (a host root on the initial ramfs, which is no mount point:
// EINVAL), MS_MOVE and chroot, as runc does.
func enterRoot(rootfs string, noPivot bool) error {
	if !noPivot {
		err := pivotRoot(rootfs)
		if !errors.Is(err, unix.EINVAL) {
			return err
		}
	}
	if err := unix.Chdir(rootfs); err != nil {
		return err
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s onto /: %w", rootfs, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", rootfs, err)
	}
	return unix.Chdir("/")
}

func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", rootfs, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	// The old root is stacked on "." now: keep its unmount from reaching the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

func maskPath(p string) error {
	fi, err := os.Stat(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0k")
	}
	return unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
}

func readonlyPath(p string) error {
	if _, err := os.Stat(p); os.IsNotExist(err) {
		return nil
	}
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	return remountReadonly(p, true)
}
