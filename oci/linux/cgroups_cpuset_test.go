package linux

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestFillCpusetV1 creates a two-level cgroup on the host's v1 cpuset
// hierarchy: each new level gets its parent's cpus and mems, and, while the
// root balances load, does not balance itself (no rebuild of the
// scheduler's domains); a cpuset that has its cpus already is left as it is.
func TestFillCpusetV1(t *testing.T) {
	fixtures.RequireRoot(t)
	l, err := detectCgroupLayout()
	if err != nil {
		t.Fatal(err)
	}
	root := l.V1["cpuset"]
	if l.Unified != "" || root == "" {
		t.Skip("needs a cgroup v1 cpuset hierarchy (hybrid or v1 host)")
	}
	rootLB, err := readCgroupFile(root, "cpuset.sched_load_balance")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("/berth-cpusettest-%d", os.Getpid())
	p := l.paths(name + "/child")
	if err := p.create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.destroy()
		_ = l.paths(name).destroy() // the parent, in every hierarchy create made it in
	})
	want := map[string]string{}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		if want[f], err = readCgroupFile(root, f); err != nil {
			t.Fatal(err)
		}
	}
	wantLB := "1"
	if rootLB == "1" {
		wantLB = "0"
	}
	for _, d := range []string{filepath.Join(root, name), p.V1["cpuset"]} {
		for f, v := range want {
			if got, _ := readCgroupFile(d, f); got != v {
				t.Errorf("%s/%s = %q, want the root's %q", d, f, got, v)
			}
		}
		if got, _ := readCgroupFile(d, "cpuset.sched_load_balance"); got != wantLB {
			t.Errorf("%s: sched_load_balance %q, want %q (root's is %q)", d, got, wantLB, rootLB)
		}
	}
	// An existing cpuset keeps what it has.
	if err := writeCgroupFile(p.V1["cpuset"], "cpuset.sched_load_balance", "1"); err != nil {
		t.Fatal(err)
	}
	if err := p.create(); err != nil {
		t.Fatal(err)
	}
	if got, _ := readCgroupFile(p.V1["cpuset"], "cpuset.sched_load_balance"); got != "1" {
		t.Errorf("create again changed a filled cpuset's sched_load_balance to %q", got)
	}
}
