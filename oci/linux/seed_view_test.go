package linux

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestMountView clones files through a view of a directory: a file on the
// view's mount comes through it, the same file; a file under a mount
// stacked inside the directory, or outside it, is not the view's (the
// caller clones it by the host's path); a view whose holder has gone is none.
func TestMountView(t *testing.T) {
	fixtures.RequireRoot(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte("in the view\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "f"), []byte("under the mount\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, mnt, err := NewMountView(dir)
	if err != nil {
		t.Skipf("no mount view on this kernel: %v", err)
	}
	defer f.Close()
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(sub, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(sub, "f"), []byte("on the mount\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v := openMountView(MountViewValue(mnt, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), dir))
	if v == nil {
		t.Fatal("openMountView: nil")
	}
	defer v.Close()
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	fd, err := v.clone(filepath.Join(dir, "hosts"), flags)
	if err != nil {
		t.Fatalf("clone of a file on the view's mount: %v", err)
	}
	defer unix.Close(fd)
	if got := readVia(t, fd); got != "in the view\n" {
		t.Fatalf("the clone reads %q", got)
	}
	for _, p := range []string{filepath.Join(sub, "f"), "/etc/hostname", dir + "-other/x"} {
		if fd, err := v.clone(p, flags); err != errNotInView {
			unix.Close(fd)
			t.Errorf("clone of %s: %v, want errNotInView", p, err)
		}
	}
	if v := openMountView(MountViewValue(mnt, "/proc/self/fd/999999", dir)); v != nil {
		t.Error("a view at a closed descriptor opened")
	}
	for _, bad := range []string{"", "x /proc/self/fd/3 /d", "7 /proc/self/fd/3", "7 /proc/self/fd/3 relative"} {
		if v := openMountView(bad); v != nil {
			t.Errorf("openMountView(%q) opened", bad)
		}
	}
}

func readVia(t *testing.T, mountFd int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", mountFd))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
