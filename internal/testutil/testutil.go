// Package testutil has helpers shared by tests that need root or kernel features.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// RemoveCgroupOnCleanup removes the cgroup parent, such as "/berth-test",
// and any empty cgroups below it, from every hierarchy once the test ends
// (after the runtimes have removed the containers' own).
func RemoveCgroupOnCleanup(t testing.TB, parent string) {
	t.Helper()
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + parent)
		dirs = append(dirs, "/sys/fs/cgroup"+parent)
		for _, d := range dirs {
			var all []string
			_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
				if err == nil && e.IsDir() {
					all = append(all, p)
				}
				return nil
			})
			for i := len(all) - 1; i >= 0; i-- {
				_ = os.Remove(all[i])
			}
		}
	})
}

// Runtime is an OCI runtime binary a test runs containers with.
type Runtime struct{ Name, Path string }

// Runtimes returns berth-runtime and, where installed and usable here, runc
// and crun, which every runtime-facing test runs against alike.
func Runtimes(t testing.TB) []Runtime {
	t.Helper()
	out := []Runtime{{"berth-runtime", filepath.Join(Binaries(t), "berth-runtime")}}
	for _, n := range []string{"runc", "crun"} {
		p, err := exec.LookPath(n)
		if err != nil {
			t.Logf("%s is not installed: not comparing against it", n)
			continue
		}
		if n == "crun" && crunBlockedByHugetlb() {
			t.Logf("crun 1.8 refuses to run while hugetlb sits on the cgroup2 root of this hybrid host; " +
				"mount it as v1 to include crun (.ci/run does): mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb")
			continue
		}
		out = append(out, Runtime{n, p})
	}
	return out
}

// crunBlockedByHugetlb: a hybrid host whose cgroup2 mount holds the hugetlb
// controller, with no v1 hugetlb hierarchy.
func crunBlockedByHugetlb() bool {
	b, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	if err != nil {
		return false
	}
	_, err = os.Stat("/sys/fs/cgroup/hugetlb/tasks")
	return strings.Contains(string(b), "hugetlb") && err != nil
}
