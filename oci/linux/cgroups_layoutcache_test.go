package linux

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/test/fixtures"
)

// The layout is read from mountinfo once, then kept while the host's
// hierarchies and mount points stay as they were; a change of either has
// it read again.
func TestCachedCgroupLayout(t *testing.T) {
	real, err := readMountinfoLayout()
	if err != nil {
		t.Skipf("no cgroup filesystem to read: %v", err)
	}
	file := filepath.Join(t.TempDir(), "run", "cgroup-layout.json")
	reads := 0
	read := func() (cgroupLayout, error) { reads++; return real, nil }
	for i := range 3 {
		l, err := cachedCgroupLayout(file, read)
		if err != nil {
			t.Fatal(err)
		}
		if l.Unified != real.Unified || len(l.V1) != len(real.V1) || l.V1["memory"] != real.V1["memory"] {
			t.Fatalf("call %d: layout %+v, want %+v", i, l, real)
		}
	}
	if reads != 1 {
		t.Fatalf("mountinfo read %d times in three calls, want once", reads)
	}

	change := func(edit func(c *layoutCache)) {
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var c layoutCache
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		edit(&c)
		b, _ = json.Marshal(c)
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		was := reads
		if _, err := cachedCgroupLayout(file, read); err != nil {
			t.Fatal(err)
		}
		if reads != was+1 {
			t.Fatalf("a changed host did not have the layout read again")
		}
	}
	// A hierarchy mounted since (hugetlb moved off cgroup2, say).
	change(func(c *layoutCache) { c.Cgroups += "hugetlb:13:1;" })
	// A mount point unmounted and mounted anew.
	change(func(c *layoutCache) {
		for p := range c.MountIDs {
			c.MountIDs[p]++
			break
		}
	})
	// Another mount namespace.
	change(func(c *layoutCache) { c.MountNS = "mnt:[1]" })
	// A torn or foreign file.
	if err := os.WriteFile(file, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	was := reads
	if _, err := cachedCgroupLayout(file, read); err != nil || reads != was+1 {
		t.Fatalf("an unreadable cache: err %v, reads %d → %d", err, was, reads)
	}
}

func TestHierarchies(t *testing.T) {
	a := "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t3\t120\t1\nmemory\t5\t118\t1\nhugetlb\t0\t1\t1\n"
	b := "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t3\t999\t1\nmemory\t5\t2\t1\nhugetlb\t0\t1\t1\n"
	if hierarchies([]byte(a)) != hierarchies([]byte(b)) {
		t.Fatal("the count of cgroups changed the hierarchies")
	}
	c := "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t3\t120\t1\nmemory\t5\t118\t1\nhugetlb\t13\t1\t1\n"
	if hierarchies([]byte(a)) == hierarchies([]byte(c)) {
		t.Fatal("a hierarchy mounted did not change the hierarchies")
	}
}

// A real mount point unmounted and mounted again is a new mount: the layout
// kept for the old one is read anew.
func TestCachedCgroupLayoutRemount(t *testing.T) {
	fixtures.RequireRoot(t)
	dir := t.TempDir()
	mount := func() {
		t.Helper()
		if err := unix.Mount("none", dir, "cgroup2", 0, ""); err != nil {
			t.Skipf("mount cgroup2 at %s: %v", dir, err)
		}
	}
	mount()
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	l := cgroupLayout{Unified: dir}
	file := filepath.Join(t.TempDir(), "cgroup-layout.json")
	reads := 0
	read := func() (cgroupLayout, error) { reads++; return l, nil }
	for range 2 {
		if _, err := cachedCgroupLayout(file, read); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	mount()
	if _, err := cachedCgroupLayout(file, read); err != nil {
		t.Fatal(err)
	}
	if reads != 2 {
		t.Fatalf("layout read %d times, want 2 (once, then after the remount)", reads)
	}
}
