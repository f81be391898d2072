package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/test/fixtures"
)

// detached starts a container that runs script in the background and
// returns its ID and its init's PID.
func (e *env) detached(t *testing.T, name, script string, mod func(*specs.Spec)) (string, int) {
	t.Helper()
	id := e.id(name)
	e.spec(t, id, script, mod)
	devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	defer devnull.Close()
	c := e.cmd("run", "--detach", "--bundle", e.bundle, id)
	c.Stdin, c.Stdout, c.Stderr = devnull, devnull, devnull
	if err := c.Run(); err != nil {
		t.Fatalf("run -d %s: %v", name, err)
	}
	t.Cleanup(func() { _ = e.cmd("delete", "--force", id).Run() })
	out, err := e.cmd("state", id).Output()
	if err != nil {
		t.Fatalf("state %s: %v", name, err)
	}
	var st struct{ Pid int }
	if err := json.Unmarshal(out, &st); err != nil || st.Pid <= 0 {
		t.Fatalf("state %s: %q %v", name, out, err)
	}
	return id, st.Pid
}

// join replaces (or adds) a namespace of type typ with a path.
func join(typ specs.LinuxNamespaceType, path string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != typ {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = append(ns, specs.LinuxNamespace{Type: typ, Path: path})
	}
}

// Joining a user namespace by path (a Kubernetes pod with user namespaces:
// every container joins the pod's) and a mount namespace by path, which a
// multi-threaded Go process cannot do: berth-runtime's C constructor does it.
func TestJoinUserAndMountNamespaces(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	for _, rt := range runtimes(t) {
		t.Run(rt.Name, func(t *testing.T) {
			e := setup(t, rt)
			for d := e.bundle; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
				os.Chmod(d, 0o755)
			}
			_, holder := e.detached(t, "userns-holder", "sleep 600", userns)
			nsPath := fmt.Sprintf("/proc/%d/ns/user", holder)
			want, err := os.Readlink(nsPath)
			if err != nil {
				t.Fatal(err)
			}
			out, code := e.run(t, "join-user", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user; hostname", func(s *specs.Spec) {
				userns(s) // the same mappings, as the joined namespace has them
				join(specs.UserNamespace, nsPath)(s)
				s.Hostname = "joined"
			})
			f := strings.Fields(out)
			if code != 0 || len(f) < 6 || f[0] != "0" || f[2] != "200000" || f[4] != want || f[5] != "joined" {
				t.Fatalf("in the joined user namespace (want %s): exit %d, %q", want, code, out)
			}

			// A path that is no namespace fails the create, naming it, and
			// leaves no container behind.
			bad := e.id("join-bad")
			e.spec(t, bad, "true", func(s *specs.Spec) { userns(s); join(specs.UserNamespace, "/nonexistent/ns/user")(s) })
			if out, err := e.cmd("create", "--bundle", e.bundle, bad).CombinedOutput(); err == nil || !strings.Contains(string(out), "/nonexistent/ns/user") {
				t.Errorf("create joining a missing namespace: %v %q", err, out)
			}
			if err := e.cmd("state", bad).Run(); err == nil {
				_ = e.cmd("delete", "--force", bad).Run()
				t.Error("the failed create left a container")
			}

			// A mount namespace by path (a debugging sidecar's): the
			// container sees the other's files. runc 1.1 and crun 1.8 fail this create: they prepare a
			// root filesystem inside the joined namespace (runc: "open
			// /proc/self/mountinfo", crun: "chdir(.)"); berth-runtime takes
			// the namespace's root as the container's (oci/README.md).
			if !strings.HasPrefix(rt.Name, "berth-runtime") {
				return
			}
			_, other := e.detached(t, "mnt-holder", "echo from-holder > /tmp/marker; sleep 600", nil)
			mnt := fmt.Sprintf("/proc/%d/ns/mnt", other)
			for i := 0; i < 200; i++ { // the holder writes its marker
				if _, err := os.Stat(fmt.Sprintf("/proc/%d/root/tmp/marker", other)); err == nil {
					break
				}
				sleep()
			}
			// And its PID namespace, whose /proc that namespace shows.
			out, code = e.run(t, "join-mnt", "cat /tmp/marker; readlink /proc/self/ns/mnt; tr '\\0' ' ' < /proc/1/cmdline", func(s *specs.Spec) {
				join(specs.MountNamespace, mnt)(s)
				join(specs.PIDNamespace, fmt.Sprintf("/proc/%d/ns/pid", other))(s)
			})
			wantMnt, _ := os.Readlink(mnt)
			if code != 0 || !strings.Contains(out, "from-holder") || !strings.Contains(out, wantMnt) || !strings.Contains(out, "sleep 600") {
				t.Fatalf("in the joined mount namespace (want %s): exit %d, %q", wantMnt, code, out)
			}
		})
	}
}

// A new time namespace with offsets: the container's boot clock is ahead.
func TestTimeNamespace(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		t.Skip("this kernel has no time namespaces")
	}
	host, _ := os.Readlink("/proc/self/ns/time")
	for _, rt := range runtimes(t) {
		t.Run(rt.Name, func(t *testing.T) {
			switch rt.Name {
			case "runc":
				t.Skip("runc 1.1 has no time namespaces (1.2 added them)")
			case "crun":
				t.Skip("crun 1.8.1 fails every container with a new time namespace here (\"write to sync socket: Broken pipe\"), offsets or not")
			}
			e := setup(t, rt)
			out, code := e.run(t, "timens", "cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time", func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
				s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 10_000_000}}
			})
			f := strings.Fields(out)
			if code != 0 || len(f) < 2 {
				t.Fatalf("exit %d: %q", code, out)
			}
			if up, _ := strconv.Atoi(f[0]); up < 10_000_000 || f[1] == host {
				t.Fatalf("uptime %s (want 10000000 s ahead), time namespace %s (host %s)", f[0], f[1], host)
			}
			// exec joins the container's time namespace too.
			id, _ := e.detached(t, "timens-exec", "sleep 600", func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
				s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 10_000_000}}
			})
			eout, err := e.cmd("exec", id, "sh", "-c", "cut -d. -f1 /proc/uptime").CombinedOutput()
			if up, _ := strconv.Atoi(strings.TrimSpace(string(eout))); err != nil || up < 10_000_000 {
				t.Fatalf("exec in the time namespace: uptime %q %v", eout, err)
			}
		})
	}
}

// --no-pivot enters the rootfs with MS_MOVE and chroot (runc's flag, for
// hosts whose root is the initial ramfs, where pivot_root cannot work; the
// same path is berth-runtime's fallback when pivot_root says EINVAL).
func TestNoPivot(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	for _, rt := range runtimes(t) {
		t.Run(rt.Name, func(t *testing.T) {
			e := setup(t, rt)
			// Its result looks like pivot_root's from inside (mountinfo only
			// shows what is under the root either way): the container runs
			// in its rootfs and not in the host's.
			id := e.id("nopivot")
			e.spec(t, id, "ls /bin/busybox && ls /etc/debian_version 2>&1", nil)
			out, err := e.cmd("run", "--no-pivot", "--bundle", e.bundle, id).CombinedOutput()
			_ = e.cmd("delete", "--force", id).Run()
			if err == nil || !strings.Contains(string(out), "/bin/busybox") || !strings.Contains(string(out), "No such file") {
				t.Fatalf("run --no-pivot: %v %q", err, out)
			}
		})
	}
}

// TestMountSeed: with a mount seed, berth-runtime makes the container's
// mount namespace from it (its state says so) unless the container needs
// the host's tree at its init (a createContainer hook); without one, from
// the host's. The battery runs every check on berth-runtime+seed too.
func TestMountSeed(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	if seedEnv == nil {
		t.Skip("no mount seed could be made here")
	}
	rts := runtimes(t)
	seeded := slices.IndexFunc(rts, func(r fixtures.Runtime) bool { return r.Name == "berth-runtime+seed" })
	hook := func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/true"}}}
	}
	for _, c := range []struct {
		name string
		rt   fixtures.Runtime
		mod  func(*specs.Spec)
		want bool
	}{
		{"seeded", rts[seeded], nil, true},
		{"createContainer hook", rts[seeded], hook, false},
		{"no seed", rts[0], nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := setup(t, c.rt)
			host := func() string { b, _ := os.ReadFile("/proc/self/mountinfo"); return string(b) }
			before := host()
			id, pid := e.detached(t, "seed", "sleep 600", func(s *specs.Spec) {
				// A bind whose copy the init mounts under: nothing of it may reach the host.
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: hostDir, Options: []string{"rbind"}},
					specs.Mount{Destination: "/mnt/sub", Type: "tmpfs", Source: "tmpfs"})
				if c.mod != nil {
					c.mod(s)
				}
			})
			if after := host(); after != before {
				t.Errorf("the host's mount table changed:\nbefore\n%s\nafter\n%s", before, after)
			}
			b, err := os.ReadFile(filepath.Join(e.root, id, "state.json"))
			if err != nil {
				t.Fatal(err)
			}
			var st struct{ MountSeed bool }
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatal(err)
			}
			if st.MountSeed != c.want {
				t.Fatalf("mountSeed %v, want %v", st.MountSeed, c.want)
			}
			// Either way the container's table holds its own mounts only.
			mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(mi), "\n"); n > 40 {
				t.Fatalf("%d mounts in the container's namespace:\n%s", n, mi)
			}
		})
	}
}
