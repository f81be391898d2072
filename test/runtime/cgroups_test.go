package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestCgroupMembership: a container's init and each exec'd process are in
// the container's cgroup, in every hierarchy — berth-runtime starts them
// there rather than moving them (oci/linux/cgroups_join.go: a "tasks" write
// of "0" on v1, clone3 CLONE_INTO_CGROUP on v2), runc and crun move them;
// all must end in the same place. berth-runtime also runs on a pure cgroup2
// layout: each of its commands in a mount namespace of the test's own with
// cgroup2 mounted on /sys/fs/cgroup (the host's v2 hierarchy, whatever this
// host drives its controllers with), with and without a user namespace.
func TestCgroupMembership(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	type layout struct {
		name string
		v2   bool
		mod  func(*specs.Spec)
	}
	for _, rt := range runtimes(t) {
		layouts := []layout{{name: "host"}, {name: "host userns", mod: userns}}
		if rt.Name == "berth-runtime" {
			layouts = append(layouts, layout{name: "cgroup2", v2: true}, layout{name: "cgroup2 userns", v2: true, mod: userns})
		}
		for _, l := range layouts {
			t.Run(rt.Name+"/"+l.name, func(t *testing.T) {
				e := setup(t, rt)
				for d := e.bundle; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
					os.Chmod(d, 0o755) // for the user namespace's root
				}
				cmd := e.cmd
				if l.v2 {
					cmd = func(args ...string) *exec.Cmd {
						return exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c",
							`umount -R /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec "$0" "$@"`, rt.Path, "--root", e.root}, args...)...)
					}
				}
				id := e.id("cgroup")
				e.spec(t, id, "sleep 600", l.mod)
				devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
				defer devnull.Close()
				c := cmd("run", "--detach", "--bundle", e.bundle, id)
				logPath := filepath.Join(t.TempDir(), "out")
				logf, _ := os.Create(logPath)
				defer logf.Close()
				c.Stdin, c.Stdout, c.Stderr = devnull, logf, logf
				if err := c.Run(); err != nil {
					out, _ := os.ReadFile(logPath)
					t.Fatalf("run -d: %v %s", err, out)
				}
				defer cmd("delete", "--force", id).Run()
				st, err := cmd("state", id).Output()
				if err != nil {
					t.Fatalf("state: %v", err)
				}
				pid := stateField(string(st), "pid")
				want := cgroupParent + "/" + id
				host, _ := os.ReadFile("/proc/" + pid + "/cgroup")
				for _, line := range strings.Split(strings.TrimSpace(string(host)), "\n") {
					f := strings.SplitN(line, ":", 3)
					if len(f) != 3 || (!l.v2 && f[0] == "0") || (l.v2 && f[0] != "0") {
						continue // the layout's other hierarchies
					}
					if f[2] != want {
						t.Errorf("init's cgroup %s, want %s in every hierarchy:\n%s", line, want, host)
					}
				}
				// From inside, through the container's cgroup namespace: an
				// exec'd process outside the init's cgroup reads "/.." paths.
				out, err := cmd("exec", id, "sh", "-c", `[ "$(cat /proc/self/cgroup)" = "$(cat /proc/1/cgroup)" ] && echo same || cat /proc/self/cgroup /proc/1/cgroup`).CombinedOutput()
				if err != nil || strings.TrimSpace(string(out)) != "same" {
					t.Fatalf("exec'd process not in the init's cgroup: %v\n%s", err, out)
				}
			})
		}
	}
}

// stateField reads a number field of `state`'s JSON without a struct.
func stateField(state, name string) string {
	_, after, _ := strings.Cut(state, `"`+name+`":`)
	after = strings.TrimLeft(after, " ")
	end := strings.IndexFunc(after, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(after)
	}
	if _, err := strconv.Atoi(after[:end]); err != nil {
		return ""
	}
	return after[:end]
}
