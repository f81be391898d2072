package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/test/fixtures"
)

// Hooks run at their points in the OCI order, each with the state on stdin:
// createRuntime (runtime namespace), createContainer (container namespace,
// runtime paths), startContainer (inside the container), poststart, poststop.
func TestHooks(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	for _, rt := range runtimes(t) {
		t.Run(rt.Name, func(t *testing.T) {
			e := setup(t, rt)
			logDir := t.TempDir()
			log := filepath.Join(logDir, "log")
			host := func(name string) specs.Hook {
				return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "read -r s; echo \"" + name + " $s\" >> " + log}}
			}
			id := e.id("hooks")
			e.spec(t, id, "echo main >> /hooklog/log", func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hooklog", Type: "bind", Source: logDir, Options: []string{"rbind", "rw"}})
				s.Hooks = &specs.Hooks{
					CreateRuntime:   []specs.Hook{host("createRuntime")},
					CreateContainer: []specs.Hook{host("createContainer")},
					// Inside the container: its own sh, its view of the log.
					StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "read -r s; echo \"startContainer $s\" >> /hooklog/log"}}},
					Poststart:      []specs.Hook{host("poststart")},
					Poststop:       []specs.Hook{host("poststop")},
				}
			})
			devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			defer devnull.Close()
			for _, args := range [][]string{{"create", "--bundle", e.bundle, id}, {"start", id}} {
				c := e.cmd(args...)
				c.Stdin, c.Stdout, c.Stderr = devnull, devnull, devnull
				if err := c.Run(); err != nil {
					t.Fatalf("%s: %v", args[0], err)
				}
			}
			deadline := 0
			for !strings.Contains(readFile(log), "main") && deadline < 500 {
				deadline++
				sleep()
			}
			if out, err := e.cmd("delete", "--force", id).CombinedOutput(); err != nil {
				t.Fatalf("delete: %v %s", err, out)
			}
			var names []string
			for _, l := range strings.Split(strings.TrimSpace(readFile(log)), "\n") {
				name, state, _ := strings.Cut(l, " ")
				names = append(names, name)
				if name != "main" && !strings.Contains(state, `"id":"`+id+`"`) {
					t.Errorf("%s hook got state %q", name, state)
				}
			}
			pos := map[string]int{}
			for i, n := range names {
				pos[n] = i
			}
			before := func(a, b string) {
				if _, ok := pos[a]; !ok {
					t.Fatalf("%s did not run: %v", a, names)
				}
				if pos[a] > pos[b] {
					t.Errorf("%s ran after %s: %v", a, b, names)
				}
			}
			before("createRuntime", "createContainer")
			before("createContainer", "startContainer")
			before("startContainer", "main")
			before("main", "poststop")
			before("poststart", "poststop")
			// The spec puts poststart after startContainer. berth-runtime
			// keeps that order; runc and crun run poststart while
			// startContainer hooks may still run (their difference, not ours).
			if rt.Name == "berth-runtime" {
				before("startContainer", "poststart")
			}
			if len(names) != 6 {
				t.Errorf("hooks ran %d times: %v", len(names), names)
			}
		})
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func TestFailingHookFailsCreate(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	for _, rt := range runtimes(t) {
		t.Run(rt.Name, func(t *testing.T) {
			e := setup(t, rt)
			id := e.id("badhook")
			e.spec(t, id, "true", func(s *specs.Spec) {
				s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo no >&2; exit 3"}}}}
			})
			if err := e.cmd("create", "--bundle", e.bundle, id).Run(); err == nil {
				_ = e.cmd("delete", "--force", id).Run()
				t.Fatal("create succeeded with a failing createRuntime hook")
			}
			if out, _ := e.cmd("list", "-q").Output(); strings.TrimSpace(string(out)) != "" {
				t.Errorf("list after the failed create: %q", out)
			}
			if dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + cgroupParent + "/" + id); len(dirs) > 0 {
				t.Errorf("cgroups left: %v", dirs)
			}
		})
	}
}
