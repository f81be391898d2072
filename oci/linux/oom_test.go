package linux

import (
	"os"
	"path/filepath"
	"testing"
)

// OOM counters on both cgroup versions, on fake trees: this VM runs v1, so
// the v2 file is written by hand as the kernel lays it out.
func TestOOMKills(t *testing.T) {
	v2 := t.TempDir()
	os.WriteFile(filepath.Join(v2, "memory.events"), []byte("low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n"), 0o644)
	v1 := t.TempDir()
	os.WriteFile(filepath.Join(v1, "memory.oom_control"), []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n"), 0o644)
	for dir, want := range map[string]uint64{v2: 2, v1: 5} {
		got, err := OOMKills(dir)
		if err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", dir, got, err, want)
		}
	}
	if _, err := OOMKills(t.TempDir()); err == nil {
		t.Error("no counters: no error")
	}
}
