package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestCInit: berth-runtime's containers get the C init, which never starts
// a Go runtime (one thread while it waits for start), unless the spec needs
// what only the Go init does (a hook here) or BERTH_GO_INIT asks for it; the
// state says which ran. The battery runs every check on both.
func TestCInit(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	rts := runtimes(t)
	byName := map[string]fixtures.Runtime{}
	for _, r := range rts {
		byName[r.Name] = r
	}
	hook := func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/true"}}}
	}
	cases := []struct {
		name, rt string
		mod      func(*specs.Spec)
		want     bool
	}{
		{"default", "berth-runtime", nil, true},
		{"seeded", "berth-runtime+seed", nil, true},
		{"user namespace", "berth-runtime", userns, true},
		{"createContainer hook", "berth-runtime", hook, false},
		{"BERTH_GO_INIT=1", "berth-runtime+goinit", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt, ok := byName[c.rt]
			if !ok {
				t.Skipf("no %s here (see TestMain)", c.rt)
			}
			e := setup(t, rt)
			// The mapped root of the user namespace is another host user: it must reach the bundle.
			for d := e.bundle; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
				os.Chmod(d, 0o755)
			}
			id := e.id("cinit")
			e.spec(t, id, "echo started", c.mod)
			devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			defer devnull.Close()
			cr := e.cmd("create", "--bundle", e.bundle, id)
			// A file, not a pipe: the init keeps its stderr until it execs.
			errOut, err := os.CreateTemp(t.TempDir(), "stderr")
			if err != nil {
				t.Fatal(err)
			}
			defer errOut.Close()
			cr.Stdin, cr.Stdout, cr.Stderr = devnull, devnull, errOut
			if err := cr.Run(); err != nil {
				msg, _ := os.ReadFile(errOut.Name())
				t.Fatalf("create: %v: %s", err, msg)
			}
			t.Cleanup(func() { _ = e.cmd("delete", "--force", id).Run() })
			b, err := os.ReadFile(filepath.Join(e.root, id, "state.json"))
			if err != nil {
				t.Fatal(err)
			}
			var st struct {
				CInit bool
				Pid   int
			}
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatal(err)
			}
			if st.CInit != c.want {
				t.Errorf("cInit %v, want %v", st.CInit, c.want)
			}
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.Pid))
			if err != nil {
				t.Fatal(err)
			}
			oneThread := strings.Contains(string(status), "\nThreads:\t1\n")
			if oneThread != c.want {
				t.Errorf("the init waiting for start: one thread %v, want %v (a Go runtime has more)", oneThread, c.want)
			}
			if out, err := e.cmd("start", id).CombinedOutput(); err != nil {
				t.Fatalf("start: %v: %s", err, out)
			}
		})
	}
}

// TestInitErrorNamesTheFile: a create that fails in the init says why and
// names the path at fault, whichever init ran, even when the path holds
// characters JSON must escape.
func TestInitErrorNamesTheFile(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	for _, rt := range runtimes(t) {
		if !strings.HasPrefix(rt.Name, "berth-runtime") {
			continue
		}
		t.Run(rt.Name, func(t *testing.T) {
			e := setup(t, rt)
			for _, c := range []struct{ name, arg0, want string }{
				{"quoted", `/no/such"binary\x`, `/no/such"binary\x`},
				{"not in PATH", "no-such-binary", `"no-such-binary": executable file not found in $PATH`},
			} {
				id := e.id("initerr")
				e.spec(t, id, "true", func(s *specs.Spec) { s.Process.Args = []string{c.arg0} })
				out, err := e.cmd("create", "--bundle", e.bundle, id).CombinedOutput()
				if err == nil {
					_ = e.cmd("delete", "--force", id).Run()
					t.Fatalf("%s: create succeeded", c.name)
				}
				if !strings.Contains(string(out), c.want) {
					t.Errorf("%s: create's error %q does not name %q", c.name, out, c.want)
				}
				if err := e.cmd("state", id).Run(); err == nil {
					_ = e.cmd("delete", "--force", id).Run()
					t.Errorf("%s: the failed create left a container", c.name)
				}
			}
		})
	}
}
