package linux

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReadStatFile: a read shorter than asked ends the file; a file longer
// than the buffer is read whole; a cgroup's memory.stat (one kernfs record,
// over a kilobyte) reads as ReadSmallFile reads it, to its end.
func TestReadStatFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "long")
	want := strings.Repeat("key 12345\n", 500)
	if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := readStatFile(p, make([]byte, 0, 32)); err != nil || string(got) != want {
		t.Errorf("a 5,000-byte file through a 32-byte buffer: %d bytes, %v", len(got), err)
	}
	// Past its bound, a StatFiles reads without keeping the file.
	f := NewStatFiles()
	f.max = 1
	other := filepath.Join(t.TempDir(), "other")
	if err := os.WriteFile(other, []byte("7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := f.read(p, nil); err != nil || string(got) != want {
			t.Errorf("through StatFiles: %d bytes, %v", len(got), err)
		}
		if n, err := f.uint(other); err != nil || n != 7 {
			t.Errorf("the file past the bound: %d, %v", n, err)
		}
	}
	if f.Open() != 1 {
		t.Errorf("%d files open, the bound is 1", f.Open())
	}

	// The counters move between two reads: the keys do not.
	keys := func(b []byte) string {
		var k []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			k = append(k, strings.Fields(l)[0])
		}
		return strings.Join(k, " ")
	}
	read := 0
	for _, f := range []string{"/sys/fs/cgroup/memory/memory.stat", "/sys/fs/cgroup/memory.stat", "/sys/fs/cgroup/unified/memory.stat"} {
		full, err := ReadSmallFile(f)
		if err != nil {
			continue
		}
		read++
		got, err := readStatFile(f, make([]byte, 0, 64))
		if err != nil || keys(got) != keys(full) {
			t.Errorf("%s: %q (%v), want the keys ReadSmallFile reads: %q", f, keys(got), err, keys(full))
		}
	}
	if read == 0 {
		t.Log("no memory.stat here to compare with")
	}
}

// TestStatFiles: a cgroup's CPU time read through a kept-open file moves as
// the cgroup's process runs (kernfs makes a read at offset 0 anew), one file
// stays open for the many reads; a cgroup removed and made again under its
// name is read afresh (its stale file reads ENODEV); a file unread for a
// minute is closed.
func TestStatFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a cgroup")
	}
	// v1's cpuacct, and cgroup2 (the hybrid's unified tree, or the whole).
	ran := 0
	for _, root := range []string{"/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		probe := filepath.Join(root, "cpuacct.usage")
		if !strings.HasSuffix(root, "cpuacct") {
			probe = filepath.Join(root, "cgroup.controllers")
		}
		if _, err := os.Stat(probe); err != nil {
			continue
		}
		ran++
		t.Run(filepath.Base(root), func(t *testing.T) { testStatFiles(t, root) })
	}
	if ran == 0 {
		t.Skip("no cpuacct (v1) nor cgroup2 mounted under /sys/fs/cgroup")
	}
}

func testStatFiles(t *testing.T, file string) {
	dir := filepath.Join(file, fmt.Sprintf("berth-statfiles-test-%d", os.Getpid()))
	usage := func(f *StatFiles) uint64 {
		t.Helper()
		if strings.HasSuffix(file, "cpuacct") {
			n, err := f.uint(filepath.Join(dir, "cpuacct.usage"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		m, err := f.keyed(filepath.Join(dir, "cpu.stat"))
		if err != nil {
			t.Fatal(err)
		}
		return m["usage_usec"] * 1000
	}
	spin := func() *exec.Cmd {
		t.Helper()
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	stop := func(cmd *exec.Cmd) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		for range 50 {
			if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	f := NewStatFiles()
	cmd := spin()
	t.Cleanup(func() { stop(cmd) })
	first := usage(f)
	time.Sleep(200 * time.Millisecond)
	second := usage(f)
	if second <= first {
		t.Errorf("CPU time through the kept file: %d then %d, want it to grow", first, second)
	}
	if n := f.Open(); n != 1 {
		t.Errorf("%d files open after two reads of one, want 1", n)
	}
	stop(cmd)
	cmd = spin()
	if again := usage(f); again >= second {
		t.Errorf("the cgroup made anew reads %d, not less than the old one's %d: the stale file was read", again, second)
	}
	for _, e := range f.files {
		e.used = e.used.Add(-2 * statFilesIdle)
	}
	f.swept = time.Time{}
	_, _ = f.uint("/proc/sys/kernel/pid_max") // any read sweeps
	if n := f.Open(); n != 1 {
		t.Errorf("%d files open after a sweep, want the one just read", n)
	}
}
