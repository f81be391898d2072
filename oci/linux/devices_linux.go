package linux

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultDevices are the nodes every container gets on a tmpfs /dev, as in runc.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

func setupDev(rootfs string) error {
	for _, d := range defaultDevices {
		mode := os.FileMode(0o666)
		d.FileMode = &mode
		if err := makeDevice(rootfs, d); err != nil {
			return fmt.Errorf("default device %s: %w", d.Path, err)
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	}
	if _, err := os.Stat(filepath.Join(rootfs, "dev/pts/ptmx")); err == nil {
		links = append(links, [2]string{"pts/ptmx", "/dev/ptmx"})
	}
	for _, l := range links {
		p := filepath.Join(rootfs, l[1])
		if err := os.Symlink(l[0], p); err != nil && !os.IsExist(err) {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	return nil
}

// makeDevice creates a device node inside rootfs, falling back to a bind
// mount of the host's node where mknod is not allowed.
func makeDevice(rootfs string, d specs.LinuxDevice) error {
	dest, err := inRoot(rootfs, d.Path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	typ, ok := deviceTypes[d.Type]
	if !ok {
		return fmt.Errorf("unknown device type %q", d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	_ = os.Remove(dest)
	err = unix.Mknod(dest, typ|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	if err == unix.EPERM {
		if err := mkMountpoint(dest, false); err != nil {
			return err
		}
		return unix.Mount(d.Path, dest, "", unix.MS_BIND, "")
	}
	if err != nil {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	return unix.Chown(dest, uid, gid)
}
