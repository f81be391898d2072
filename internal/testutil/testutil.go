// Package testutil has helpers shared by tests that need root or kernel features.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireRoot skips the test, saying why, unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: run `sudo make test`")
	}
}

// RequireBinary skips the test unless name is on PATH, and returns its path.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("needs %s on PATH (.ci/run installs it)", name)
	}
	return p
}

// RemoveCgroupOnCleanup removes the (empty) cgroup parent, such as
// "/berth-test", from every mounted hierarchy once the test ends, after the
// runtimes have removed the containers' own cgroups below it.
func RemoveCgroupOnCleanup(t testing.TB, parent string) {
	t.Helper()
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + parent)
		dirs = append(dirs, "/sys/fs/cgroup"+parent)
		for _, d := range dirs {
			_ = os.Remove(d)
		}
	})
}
