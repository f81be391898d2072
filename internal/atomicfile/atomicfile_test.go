package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWrite: the file has the new content and mode, and no temporary file
// is left beside it; synced or not.
func TestWrite(t *testing.T) {
	for name, w := range map[string]func(string, []byte, os.FileMode) error{"Write": Write, "WriteSynced": WriteSynced} {
		t.Run(name, func(t *testing.T) { testWrite(t, w) })
	}
}

func testWrite(t *testing.T, write func(string, []byte, os.FileMode) error) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for _, content := range []string{"old", "new"} {
		if err := write(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "new" {
		t.Fatalf("%q %v", b, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left beside it: %v", ents)
	}
	if err := write(filepath.Join(dir, "missing", "x"), nil, 0o600); err == nil {
		t.Fatal("a file in a missing directory was written")
	}
}
