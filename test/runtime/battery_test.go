// Package runtime is the behaviour battery for OCI runtimes: every check runs
// a busybox bundle through berth-runtime, runc and crun, and looks from
// inside the container. All three must pass the same assertions.
package runtime

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/defaults"
	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/test/fixtures"
)

const cgroupParent = "/berth-battery"

var seq atomic.Int64

type env struct {
	rt     fixtures.Runtime
	bundle string
	root   string
}

func setup(t *testing.T, rt fixtures.Runtime) *env {
	t.Helper()
	base := t.TempDir()
	e := &env{rt: rt, bundle: filepath.Join(base, "bundle"), root: filepath.Join(base, "root")}
	fixtures.BusyboxRootfs(t, filepath.Join(e.bundle, "rootfs"))
	return e
}

func (e *env) spec(t *testing.T, id string, script string, mod func(*specs.Spec)) {
	t.Helper()
	s := defaults.DefaultSpec()
	s.Root.Path = "rootfs"
	s.Process.Args = []string{"sh", "-c", script}
	s.Linux.CgroupsPath = cgroupParent + "/" + id
	if mod != nil {
		mod(s)
	}
	fixtures.WriteBundle(t, e.bundle, s)
}

func (e *env) id(name string) string {
	return fmt.Sprintf("bat-%s-%s-%d", strings.ReplaceAll(name, " ", "-"), e.rt.Name, seq.Add(1))
}

func (e *env) cmd(args ...string) *exec.Cmd {
	c := exec.Command(e.rt.Path, append([]string{"--root", e.root}, args...)...)
	if len(e.rt.Env) > 0 {
		c.Env = append(os.Environ(), e.rt.Env...)
	}
	return c
}

// runtimes are fixtures.Runtimes and berth-runtime once more, its
// containers' mount namespaces made from a mount seed as under berthd.
func runtimes(t *testing.T) []fixtures.Runtime {
	rts := fixtures.Runtimes(t)
	// berth-runtime's containers get the C init where it serves; the Go
	// init, which serves the rest, runs every check too.
	goInit := rts[0]
	goInit.Name, goInit.Env = "berth-runtime+goinit", []string{linux.GoInitEnv + "=1"}
	if seedEnv == nil {
		t.Log("no mount seed (see TestMain): berth-runtime+seed is not run")
		return append([]fixtures.Runtime{rts[0], goInit}, rts[1:]...)
	}
	seeded := rts[0]
	seeded.Name, seeded.Env = "berth-runtime+seed", seedEnv
	return append([]fixtures.Runtime{rts[0], goInit, seeded}, rts[1:]...)
}

// run runs script attached and returns its output and exit code.
func (e *env) run(t *testing.T, name, script string, mod func(*specs.Spec)) (string, int) {
	t.Helper()
	id := e.id(name)
	e.spec(t, id, script, mod)
	var out bytes.Buffer
	c := e.cmd("run", "--bundle", e.bundle, id)
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s run: %v", e.rt.Name, err)
	}
	_ = e.cmd("delete", "--force", id).Run()
	return strings.TrimSpace(out.String()), code
}

type check struct {
	name   string
	script string
	mod    func(*specs.Spec)
	want   []string // substrings of the output
	code   int
}

func u32(v uint32) *uint32 { return &v }
func i64(v int64) *int64   { return &v }

var checks = []check{
	{name: "exit code", script: "exit 7", code: 7},
	{name: "pid 1", script: "echo pid=$$", want: []string{"pid=1"}},
	{name: "hostname", script: "hostname", mod: func(s *specs.Spec) { s.Hostname = "battery" }, want: []string{"battery"}},
	{name: "env and cwd", script: `echo "$FOO $(pwd)"`, mod: func(s *specs.Spec) {
		s.Process.Env = append(s.Process.Env, "FOO=bar")
		s.Process.Cwd = "/tmp"
	}, want: []string{"bar /tmp"}},
	{name: "cwd created", script: "pwd", mod: func(s *specs.Spec) { s.Process.Cwd = "/does/not/exist" }, want: []string{"/does/not/exist"}},
	{name: "user and groups", script: "id -u; id -g; id -G", mod: func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{2000, 3000}}
	}, want: []string{"1000\n1000\n", "2000", "3000"}},
	{name: "umask", script: "umask", mod: func(s *specs.Spec) { s.Process.User.Umask = u32(0o027) }, want: []string{"0027"}},
	{name: "capabilities", script: "grep -E '^Cap(Eff|Bnd)' /proc/self/status", mod: func(s *specs.Spec) {
		c := []string{"CAP_CHOWN", "CAP_KILL"}
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c}
	}, want: []string{"CapEff:\t0000000000000021", "CapBnd:\t0000000000000021"}},
	{name: "no new privs", script: "grep NoNewPrivs /proc/self/status", want: []string{"NoNewPrivs:\t1"}},
	{name: "masked paths", script: "ls /sys/firmware | wc -l; [ -e /proc/kcore ] && wc -c < /proc/kcore || echo 0", want: []string{"0\n0"}},
	{name: "readonly paths", script: "echo x > /proc/sys/kernel/domainname 2>/dev/null; echo rc=$?", want: []string{"rc=1"}},
	{name: "readonly root", script: "touch /newfile 2>/dev/null; echo rc=$?", mod: func(s *specs.Spec) { s.Root.Readonly = true }, want: []string{"rc=1"}},
	{name: "rlimits", script: "ulimit -n; ulimit -Hn", mod: func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1234, Hard: 2345}}
	}, want: []string{"1234\n2345"}},
	{name: "oom score adj", script: "cat /proc/self/oom_score_adj", mod: func(s *specs.Spec) {
		v := 500
		s.Process.OOMScoreAdj = &v
	}, want: []string{"500"}},
	{name: "sysctl", script: "cat /proc/sys/net/ipv4/ip_forward", mod: func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	}, want: []string{"1"}},
	{name: "memory limit", script: "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
		mod: func(s *specs.Spec) { s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(64 << 20)} }, want: []string{"67108864"}},
	{name: "pids limit", script: "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
		mod: func(s *specs.Spec) { s.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(50)} }, want: []string{"50"}},
	{name: "cpu shares", script: "cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight",
		mod: func(s *specs.Spec) {
			v := uint64(512)
			s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &v}
		}, want: []string{"512"}},
	{name: "default devices", script: "echo x > /dev/null && head -c 4 /dev/zero | wc -c; ls /dev/kmsg 2>&1 | grep -c 'No such'", want: []string{"4\n1"}},
	{name: "device cgroup denies", script: "head -c 1 /dev/kmsg >/dev/null 2>&1; echo rc=$?", mod: func(s *specs.Spec) {
		// The node exists, but the device cgroup keeps denying everything not allowed.
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11}}
	}, want: []string{"rc=1"}},
	{name: "mounts", script: "awk '{print $5}' /proc/self/mountinfo | grep -c -x -E '/(proc|dev|dev/pts|dev/shm|dev/mqueue|sys)'", want: []string{"6"}},
	{name: "bind mount ro", script: "cat /mnt/hello; touch /mnt/x 2>/dev/null; echo rc=$?", mod: func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: hostDir, Options: []string{"rbind", "ro"}})
	}, want: []string{"from-host\nrc=1"}},
	{name: "file binds", script: "cat /hello /over; echo x 2>/dev/null > /hello; echo rc=$?", mod: func(s *specs.Spec) {
		// /over's source is a file on a tmpfs stacked inside hostDir, over
		// another file of that name: a mount view of hostDir must not show
		// the one beneath.
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hello", Type: "bind", Source: filepath.Join(hostDir, "hello"), Options: []string{"bind", "ro"}},
			specs.Mount{Destination: "/over", Type: "bind", Source: filepath.Join(rroDir, "sub", "over"), Options: []string{"bind"}})
	}, want: []string{"from-host\nover\nrc=1"}},
	{name: "seccomp denies", script: "mkdir /tmp/x 2>&1; echo rc=$?", mod: denyMkdir(true), want: []string{"Operation not permitted", "rc=1"}},
	{name: "seccomp without no_new_privs", script: "mkdir /tmp/x 2>&1; echo rc=$?; touch /tmp/y && echo touched", mod: denyMkdir(false), want: []string{"Operation not permitted", "rc=1", "touched"}},
	{name: "recursive read-only", script: "touch /mnt/x 2>/dev/null; echo top=$?; touch /mnt/sub/x 2>/dev/null; echo sub=$?", mod: func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: rroDir, Options: []string{"rbind", "rro"}})
	}, want: []string{"top=1\nsub=1"}},
	{name: "missing binary", script: "", mod: func(s *specs.Spec) { s.Process.Args = []string{"/no/such/binary"} }, code: -1},
}

// denyMkdir gives the container a filter that fails mkdir and mkdirat with EPERM.
func denyMkdir(nnp bool) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Process.NoNewPrivileges = nnp
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
		}
	}
}

// hostDir is a host directory the bind-mount check binds into containers;
// rroDir one with a writable tmpfs mounted below it, for rro.
var hostDir, rroDir string

// seed and view are a mount seed and a mount view of hostDir this process
// holds open (referenced, so that no finalizer closes them) and seedEnv
// gives berth-runtime their paths.
var (
	seed, view *os.File
	seedEnv    []string
)

func TestMain(m *testing.M) {
	var err error
	if seed, err = linux.NewMountSeed(); err == nil {
		seedEnv = []string{fmt.Sprintf("%s=/proc/%d/fd/%d", linux.MountSeedEnv, os.Getpid(), seed.Fd())}
	} else {
		fmt.Fprintln(os.Stderr, "no mount seed:", err)
	}
	sweepBatteryDirs()
	d, err := os.MkdirTemp("", "berth-battery-")
	if err != nil {
		panic(err)
	}
	os.WriteFile(filepath.Join(d, "hello"), []byte("from-host\n"), 0o644)
	os.WriteFile(filepath.Join(d, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	hostDir = d
	rroDir = filepath.Join(d, "rro")
	os.MkdirAll(filepath.Join(rroDir, "sub"), 0o755)
	os.WriteFile(filepath.Join(rroDir, "sub", "over"), []byte("under\n"), 0o644)
	mounted := unix.Mount("tmpfs", filepath.Join(rroDir, "sub"), "tmpfs", 0, "size=1m") == nil
	os.WriteFile(filepath.Join(rroDir, "sub", "over"), []byte("over\n"), 0o644)
	// berth-runtime+seed clones the files inside hostDir through a mount view, as berthd's state directory.
	if seed != nil {
		if v, mnt, err := linux.NewMountView(d); err == nil {
			view = v
			seedEnv = append(seedEnv, linux.MountViewEnv+"="+linux.MountViewValue(mnt, fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), v.Fd()), d))
		} else {
			fmt.Fprintln(os.Stderr, "no mount view:", err)
		}
	}
	code := m.Run()
	if mounted {
		unix.Unmount(filepath.Join(rroDir, "sub"), unix.MNT_DETACH)
	}
	os.RemoveAll(d)
	os.Exit(code)
}

// sweepBatteryDirs removes what a battery run that was killed left (its
// deferred unmount never ran): the tmpfs under each rro directory, then the
// directory. A live run's is left alone: its holder's PID is in its
// pid file.
func sweepBatteryDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "berth-battery-*"))
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "pid")); err == nil {
			if pid, err := strconv.Atoi(string(b)); err == nil && unix.Kill(pid, 0) == nil {
				continue
			}
		}
		_ = unix.Unmount(filepath.Join(d, "rro", "sub"), unix.MNT_DETACH)
		_ = os.RemoveAll(d)
	}
}

func TestBattery(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	for _, rt := range runtimes(t) {
		t.Run(rt.Name, func(t *testing.T) {
			e := setup(t, rt)
			for _, c := range checks {
				t.Run(c.name, func(t *testing.T) {
					out, code := e.run(t, c.name, c.script, c.mod)
					if c.code == -1 {
						if code == 0 {
							t.Fatalf("succeeded, want a failure; output %q", out)
						}
						return
					}
					if code != c.code {
						t.Fatalf("exit %d, want %d; output %q", code, c.code, out)
					}
					for _, w := range c.want {
						if !strings.Contains(out, w) {
							t.Errorf("output %q lacks %q", out, w)
						}
					}
				})
			}
		})
	}
}

// TestLifecycle: create, state, start, exec, kill, delete, and the errors
// between them, the same for every runtime.
func TestLifecycle(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	for _, rt := range runtimes(t) {
		t.Run(rt.Name, func(t *testing.T) {
			e := setup(t, rt)
			id := e.id("life")
			e.spec(t, id, "trap 'exit 0' TERM; echo started; while true; do sleep 0.05; done", denyMkdir(true))
			logf, _ := os.Create(filepath.Join(t.TempDir(), "out"))
			defer logf.Close()
			c := e.cmd("create", "--bundle", e.bundle, id)
			c.Stdout, c.Stderr = logf, logf
			if err := c.Run(); err != nil {
				t.Fatalf("create: %v", err)
			}
			t.Cleanup(func() { _ = e.cmd("delete", "--force", id).Run() })
			state := func() string {
				out, err := e.cmd("state", id).Output()
				if err != nil {
					t.Fatalf("state: %v", err)
				}
				return string(out)
			}
			if s := state(); !strings.Contains(s, `"status": "created"`) && !strings.Contains(s, `"status":"created"`) {
				t.Fatalf("after create: %s", s)
			}
			if err := e.cmd("create", "--bundle", e.bundle, id).Run(); err == nil {
				t.Fatal("a second create with the same ID succeeded")
			}
			if err := e.cmd("start", id).Run(); err != nil {
				t.Fatalf("start: %v", err)
			}
			if s := state(); !strings.Contains(s, "running") {
				t.Fatalf("after start: %s", s)
			}
			// The container's seccomp filter binds exec'd processes too.
			if out, _ := e.cmd("exec", id, "sh", "-c", "mkdir /tmp/z 2>&1; echo rc=$?").CombinedOutput(); !strings.Contains(string(out), "rc=1") {
				t.Fatalf("exec escaped the seccomp filter: %q", out)
			}
			out, err := e.cmd("exec", id, "sh", "-c", "echo exec-pid=$$; exit 3").CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(string(out), "exec-pid=") {
				t.Fatalf("exec: %q %v", out, err)
			}
			if strings.Contains(string(out), "exec-pid=1\n") {
				t.Fatal("exec ran as pid 1: not in the container's pid namespace")
			}
			// A file the runtime inherits (fd 3) does not reach the process:
			// ls sees its stdio and its own listing of the directory.
			leak := e.cmd("exec", id, "ls", "/proc/self/fd")
			leak.ExtraFiles = []*os.File{logf}
			if out, err := leak.CombinedOutput(); err != nil || strings.Join(strings.Fields(string(out)), " ") != "0 1 2 3" {
				t.Errorf("exec's process has other fds: %q %v", out, err)
			}
			if err := e.cmd("delete", id).Run(); err == nil {
				t.Fatal("delete of a running container without --force succeeded")
			}
			if err := e.cmd("kill", id, "TERM").Run(); err != nil {
				t.Fatalf("kill: %v", err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(state(), "stopped") {
				if time.Now().After(deadline) {
					t.Fatalf("not stopped 5s after SIGTERM: %s", state())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := e.cmd("delete", id).Run(); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if err := e.cmd("state", id).Run(); err == nil {
				t.Fatal("state of a deleted container succeeded")
			}
			b, _ := os.ReadFile(logf.Name())
			if !strings.Contains(string(b), "started") {
				t.Fatalf("container output: %q", b)
			}
		})
	}
}

func TestPauseResumeUpdate(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	for _, rt := range runtimes(t) {
		t.Run(rt.Name, func(t *testing.T) {
			e := setup(t, rt)
			id := e.id("pause")
			e.spec(t, id, "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.01; done", func(s *specs.Spec) {
				s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(64 << 20)}
			})
			devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			defer devnull.Close()
			c := e.cmd("run", "--detach", "--bundle", e.bundle, id)
			c.Stdin, c.Stdout, c.Stderr = devnull, devnull, devnull
			if err := c.Run(); err != nil {
				t.Fatalf("run -d: %v", err)
			}
			t.Cleanup(func() { _ = e.cmd("delete", "--force", id).Run() })
			count := func() string {
				out, _ := exec.Command("sh", "-c", fmt.Sprintf("cat /proc/$(%s --root %s state %s | grep '\"pid\"' | grep -o '[0-9]*')/root/tmp/count", e.rt.Path, e.root, id)).Output()
				return strings.TrimSpace(string(out))
			}
			if out, err := e.cmd("pause", id).CombinedOutput(); err != nil {
				t.Fatalf("pause: %v %s", err, out)
			}
			// crun's pause on a v1 freezer can return while the cgroup is
			// still FREEZING, which its state calls running: a moment later
			// it is paused.
			var state []byte
			for i := 0; i < 100; i++ {
				if state, _ = e.cmd("state", id).Output(); strings.Contains(string(state), "paused") {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.Contains(string(state), "paused") {
				t.Fatalf("state after pause: %s", state)
			}
			before := count()
			time.Sleep(200 * time.Millisecond)
			if after := count(); after != before {
				t.Fatalf("a paused container kept running: %s then %s", before, after)
			}
			if out, err := e.cmd("resume", id).CombinedOutput(); err != nil {
				t.Fatalf("resume: %v %s", err, out)
			}
			time.Sleep(200 * time.Millisecond)
			if after := count(); after == before {
				t.Fatal("the container did not run again after resume")
			}
			if out, err := e.cmd("update", "--memory", "134217728", "--memory-swap", "134217728", "--pids-limit", "77", id).CombinedOutput(); err != nil {
				t.Fatalf("update: %v %s", err, out)
			}
			out, err := e.cmd("exec", id, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "134217728") || !strings.Contains(string(out), "77") {
				t.Fatalf("limits after update: %q %v", out, err)
			}
		})
	}
}

func sleep() { time.Sleep(10 * time.Millisecond) }

// userns maps the container's root to an unprivileged host range.
func userns(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
}

func TestUserNamespace(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	for _, rt := range runtimes(t) {
		t.Run(rt.Name, func(t *testing.T) {
			e := setup(t, rt)
			// The mapped root is an unprivileged host user: the bundle's
			// directories must be traversable by it, as a real bundle's are.
			for d := e.bundle; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
				os.Chmod(d, 0o755)
			}
			out, code := e.run(t, "userns", "id -u; cat /proc/self/uid_map; grep CapEff /proc/self/status; hostname", func(s *specs.Spec) {
				userns(s)
				s.Hostname = "inuserns"
			})
			if code != 0 {
				t.Fatalf("exit %d: %s", code, out)
			}
			fields := strings.Fields(out)
			if len(fields) < 4 || fields[0] != "0" || fields[1] != "0" || fields[2] != "200000" || fields[3] != "65536" {
				t.Fatalf("not root in a user namespace mapped to 200000: %q", out)
			}
			if !strings.Contains(out, "inuserns") || !strings.Contains(out, "CapEff:\t00000000a80425fb") {
				t.Fatalf("hostname or capabilities in the user namespace: %q", out)
			}
			// exec joins the user namespace too.
			id := e.id("userns-exec")
			e.spec(t, id, "sleep 600", userns)
			devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			defer devnull.Close()
			c := e.cmd("run", "--detach", "--bundle", e.bundle, id)
			c.Stdin, c.Stdout, c.Stderr = devnull, devnull, devnull
			if err := c.Run(); err != nil {
				t.Fatalf("run -d: %v", err)
			}
			defer e.cmd("delete", "--force", id).Run()
			eout, err := e.cmd("exec", id, "sh", "-c", "id -u; cat /proc/self/uid_map").CombinedOutput()
			if f := strings.Fields(string(eout)); err != nil || len(f) < 3 || f[0] != "0" || f[2] != "200000" {
				t.Fatalf("exec into the user namespace: %q %v", eout, err)
			}
		})
	}
}
