package idmap

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBind: through an idmapped bind, a file of the host's root is the
// namespace root's (host uid 100000), and a file that uid creates lands
// on disk as root's.
func TestBind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	sleep := exec.Command("sleep", "60")
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	sleep.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, UidMappings: m, GidMappings: m}
	if err := sleep.Start(); err != nil {
		t.Skipf("no user namespaces here: %v", err)
	}
	t.Cleanup(func() { _ = sleep.Process.Kill(); _ = sleep.Wait() })
	src, dst := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Bind(src, dst, fmt.Sprintf("/proc/%d/ns/user", sleep.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dst, unix.MNT_DETACH) })
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dst, "f"), &st); err != nil || st.Uid != 100000 || st.Gid != 100000 {
		t.Fatalf("through the idmapped bind: uid %d gid %d (%v), want 100000", st.Uid, st.Gid, err)
	}
	if err := Bind(src, t.TempDir(), "/nonexistent/ns"); err == nil {
		t.Fatal("a missing user namespace: no error")
	}
}
