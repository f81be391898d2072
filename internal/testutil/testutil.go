// Package testutil has helpers shared by tests that need root or kernel features.
package testutil

import (
	"os"
	"os/exec"
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
