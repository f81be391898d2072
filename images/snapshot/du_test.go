package snapshot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDu: du counts what du(1) counts — every block allocated, a file
// with two links once, a symlink as itself (not its target), the tree's
// directories and its root — and a missing directory as empty.
func TestDu(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, 100_000)
	for _, f := range []struct {
		name string
		data []byte
	}{{"a", []byte("x")}, {"d1/b", big}, {"d1/d2/c", []byte("yy")}, {"d1/d2/d3/empty", nil}} {
		p := filepath.Join(dir, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, "d1/b"), filepath.Join(dir, "d1/d2/b-again")); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	u, err := du(dir)
	if err != nil {
		t.Fatal(err)
	}
	// root, a, d1, d1/b, d1/d2, c, d3, empty, link: the second link of b is b.
	if u.Inodes != 9 {
		t.Errorf("%d inodes, want 9", u.Inodes)
	}
	out, err := exec.Command("du", "-s", "-B1", dir).Output()
	if err != nil {
		t.Skipf("du(1): %v", err)
	}
	want, _ := strconv.ParseUint(strings.Fields(string(out))[0], 10, 64)
	if u.Bytes != want {
		t.Errorf("%d bytes, du(1) counts %d", u.Bytes, want)
	}
	if u, err := du(filepath.Join(dir, "missing")); err != nil || u != (Usage{}) {
		t.Errorf("a missing directory: %+v, %v", u, err)
	}
}
