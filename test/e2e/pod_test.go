package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// runEcho runs one container printing its view of the pod and returns its log.
func runEcho(t *testing.T, d *daemon, ref, podName, handler string, cmd ...string) (string, int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logDir := filepath.Join(d.dir, "pods", podName)
	pod := podConfig(podName, logDir)
	podID, err := d.rs.RunPodSandbox(ctx, pod, handler)
	if err != nil {
		t.Fatalf("RunPodSandbox(%s): %v", handler, err)
	}
	defer func() {
		_ = d.rs.StopPodSandbox(ctx, podID)
		_ = d.rs.RemovePodSandbox(ctx, podID)
	}()
	cid, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
		Image:    &runtimeapi.ImageSpec{Image: ref},
		Command:  cmd,
		Envs:     []*runtimeapi.KeyValue{{Key: "GREETING", Value: []byte("hi")}},
		LogPath:  "c.log",
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}, pod)
	if err != nil {
		t.Fatalf("CreateContainer(%s): %v", handler, err)
	}
	if err := d.rs.StartContainer(ctx, cid); err != nil {
		t.Fatalf("StartContainer(%s): %v", handler, err)
	}
	st := waitExited(t, d, cid)
	b, _ := os.ReadFile(filepath.Join(logDir, "c.log"))
	return string(b), st.ExitCode
}

// Every runtime handler runs the same pod the same way.
func TestRuntimeHandlers(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := pulledBusybox(t, d)
	for _, rt := range fixtures.Runtimes(t) {
		handler := rt.Name
		if handler == "berth-runtime" {
			handler = "" // the default
		}
		t.Run(rt.Name, func(t *testing.T) {
			log, code := runEcho(t, d, ref, "h-"+rt.Name, handler,
				"sh", "-c", `echo "host=$(hostname) greeting=$GREETING uid=$(id -u) pid=$$"; ip link 2>/dev/null | grep -c ': lo' ; exit 3`)
			if code != 3 {
				t.Errorf("exit code %d, want 3", code)
			}
			want := "host=h-" + rt.Name + " greeting=hi uid=0 pid=1"
			if !strings.Contains(log, want) {
				t.Errorf("log %q lacks %q", log, want)
			}
		})
	}
	assertNothingLeft(t, d)
}

// Bad input gets a clear gRPC error, and leaves nothing behind.
func TestBadInput(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ctx := context.Background()
	ref := pulledBusybox(t, d)
	wantCode := func(what string, err error, code codes.Code) {
		t.Helper()
		if status.Code(err) != code {
			t.Errorf("%s: got %v, want %s", what, err, code)
		}
	}
	_, err := d.rs.RunPodSandbox(ctx, &runtimeapi.PodSandboxConfig{}, "")
	wantCode("RunPodSandbox without metadata", err, codes.InvalidArgument)
	_, err = d.rs.RunPodSandbox(ctx, podConfig("bad-handler", d.dir), "no-such-handler")
	wantCode("RunPodSandbox with an unknown runtime handler", err, codes.InvalidArgument)
	_, err = d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: "Not A Reference"}, nil, nil)
	wantCode("PullImage of a malformed reference", err, codes.InvalidArgument)
	_, err = d.rs.ContainerStatus(ctx, "0123456789abcdef", false)
	wantCode("ContainerStatus of an unknown container", err, codes.NotFound)
	_, err = d.rs.PodSandboxStatus(ctx, "0123456789abcdef", false)
	wantCode("PodSandboxStatus of an unknown sandbox", err, codes.NotFound)
	wantCode("StartContainer of an unknown container", d.rs.StartContainer(ctx, "0123456789abcdef"), codes.NotFound)

	pod := podConfig("bad", filepath.Join(d.dir, "pods", "bad"))
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.rs.RunPodSandbox(ctx, pod, "")
	wantCode("RunPodSandbox of the same pod twice", err, codes.AlreadyExists)
	_, err = d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "never-pulled:1"},
	}, pod)
	wantCode("CreateContainer of an image not pulled", err, codes.NotFound)
	_, err = d.rs.CreateContainer(ctx, "0123456789abcdef", &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: ref},
	}, pod)
	wantCode("CreateContainer in an unknown sandbox", err, codes.NotFound)
	// A command the image lacks fails at create, naming it.
	_, err = d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: []string{"/no/such/program"},
	}, pod)
	if err == nil || !strings.Contains(err.Error(), "/no/such/program") {
		t.Errorf("CreateContainer of a missing program: %v", err)
	}
	if ctrs, _ := d.rs.ListContainers(ctx, nil); len(ctrs) != 0 {
		t.Errorf("failed creates left %d containers", len(ctrs))
	}
	if err := d.rs.RemovePodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, d)
}

// Two daemons with their own sockets and directories run side by side.
func TestTwoDaemons(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	for _, d := range []*daemon{a, b} {
		if _, err := d.is.PullImage(context.Background(), &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	logA, _ := runEcho(t, a, ref, "two-a", "", "echo", "from-a")
	logB, _ := runEcho(t, b, ref, "two-b", "", "echo", "from-b")
	if !strings.Contains(logA, "from-a") || !strings.Contains(logB, "from-b") {
		t.Fatalf("logs: %q %q", logA, logB)
	}
	pa, _ := a.rs.ListPodSandbox(context.Background(), nil)
	if len(pa) != 0 {
		t.Fatalf("daemon a lists %d pods after removal", len(pa))
	}
}

// Ten containers keep running through a kill -9 of berthd; the restarted
// daemon reports them, reads their logs, execs in them, stops them, and
// hears of an exit that happened while it was down.
func TestContainersOutliveDaemon(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e/survivor")
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(d.dir, "pods", "survivor")
	pod := podConfig("survivor", logDir)
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string, cmd ...string) string {
		cid, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: ref},
			Command: cmd, LogPath: name + ".log",
		}, pod)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.rs.StartContainer(ctx, cid); err != nil {
			t.Fatal(err)
		}
		return cid
	}
	var long []string
	for i := 0; i < 10; i++ {
		long = append(long, mk(fmt.Sprintf("long%d", i), "sh", "-c",
			fmt.Sprintf("trap 'echo bye%d; exit 42' TERM; echo hello%d; while true; do sleep 0.1; done", i, i)))
	}
	short := mk("short", "sh", "-c", "sleep 1; exit 5")
	// berthd's containers get their mount namespaces from its mount seed,
	// not from a copy of the host's (berth-runtime's state says which).
	assertMountSeed(t, d, long[0])

	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_ = d.cmd.Wait()
	d.cmd = nil
	time.Sleep(1500 * time.Millisecond) // "short" exits while berthd is down
	d.start(fixtures.Binaries(t))

	if s := waitExited(t, d, short); s.ExitCode != 5 {
		t.Fatalf("exit while berthd was down: code %d, want 5", s.ExitCode)
	}
	for i, cid := range long {
		st, err := d.rs.ContainerStatus(ctx, cid, false)
		if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Fatalf("container %d after restart: %+v %v", i, st, err)
		}
		out, _, err := d.rs.ExecSync(ctx, cid, []string{"echo", fmt.Sprint("exec", i)}, 10*time.Second)
		if err != nil || strings.TrimSpace(string(out)) != fmt.Sprint("exec", i) {
			t.Fatalf("exec in container %d after restart: %q %v", i, out, err)
		}
	}
	for i, cid := range long {
		if err := d.rs.StopContainer(ctx, cid, 10); err != nil {
			t.Fatal(err)
		}
		if s := waitExited(t, d, cid); s.ExitCode != 42 {
			t.Fatalf("container %d stopped with %d, want 42 (its TERM trap)", i, s.ExitCode)
		}
		// The log holds what it said before and after the restart.
		b, _ := os.ReadFile(filepath.Join(logDir, fmt.Sprintf("long%d.log", i)))
		if !strings.Contains(string(b), fmt.Sprintf("stdout F hello%d\n", i)) || !strings.Contains(string(b), fmt.Sprintf("stdout F bye%d\n", i)) {
			t.Fatalf("log of container %d: %q", i, b)
		}
	}
	if err := d.rs.StopPodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	if err := d.rs.RemovePodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, d)
}

// A shim killed under a running container: berthd reports the container
// exited (it kills it: nobody could reap it or carry its output) and cleans up.
func TestShimCrash(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	podID, cid, _ := startPod(t, d, "shimcrash", nil, "sleep", "600")
	ctx := context.Background()
	shims := processesMentioning("berth-shim --dir " + filepath.Join(d.state, "containers", cid))
	if len(shims) != 1 {
		t.Fatalf("shims of %s: %v", cid, shims)
	}
	pid, _, _ := strings.Cut(shims[0], ":")
	n, _ := strconv.Atoi(pid)
	if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := waitExited(t, d, cid)
	if st.ExitCode != 255 || !strings.Contains(st.Message, "shim died") {
		t.Fatalf("after the shim died: code %d reason %q message %q", st.ExitCode, st.Reason, st.Message)
	}
	if p := processesMentioning("sleep 600"); len(p) > 0 {
		t.Fatalf("the container still runs: %v", p)
	}
	if err := d.rs.RemoveContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if err := d.rs.RemovePodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, d)
}

// RuntimeDefault seccomp stops what capabilities alone do not: creating a
// user namespace needs none. Every runtime handler applies the profile.
func TestSeccompRuntimeDefault(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ctx := context.Background()
	ref := pulledBusybox(t, d)
	for _, rt := range fixtures.Runtimes(t) {
		handler := rt.Name
		if handler == "berth-runtime" {
			handler = ""
		}
		for _, profile := range []runtimeapi.SecurityProfile_ProfileType{runtimeapi.SecurityProfile_Unconfined, runtimeapi.SecurityProfile_RuntimeDefault} {
			name := fmt.Sprintf("sc-%s-%d", rt.Name, profile)
			t.Run(name, func(t *testing.T) {
				logDir := filepath.Join(d.dir, "pods", name)
				pod := podConfig(name, logDir)
				podID, err := d.rs.RunPodSandbox(ctx, pod, handler)
				if err != nil {
					t.Fatal(err)
				}
				defer d.rs.RemovePodSandbox(ctx, podID)
				cid, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
					Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: ref},
					Command: []string{"sh", "-c", "unshare -U true && echo userns-allowed || echo userns-denied"}, LogPath: "c.log",
					Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
						Seccomp: &runtimeapi.SecurityProfile{ProfileType: profile},
					}},
				}, pod)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.rs.StartContainer(ctx, cid); err != nil {
					t.Fatal(err)
				}
				waitExited(t, d, cid)
				b, _ := os.ReadFile(filepath.Join(logDir, "c.log"))
				want := "userns-allowed"
				if profile == runtimeapi.SecurityProfile_RuntimeDefault {
					want = "userns-denied"
				}
				if !strings.Contains(string(b), want) {
					t.Fatalf("log %q lacks %q", b, want)
				}
			})
		}
	}
}

// A pod's shared PID namespace (CRI's default POD mode): two containers see
// each other's processes; PID 1 is the pod's pause, which berthd ends with
// the pod.
func TestSharedPIDNamespace(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ctx := context.Background()
	ref := pulledBusybox(t, d)
	pod := podConfig("sharedpid", filepath.Join(d.dir, "pods", "sharedpid"))
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string, cmd ...string) string {
		cid, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: ref}, Command: cmd,
		}, pod)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.rs.StartContainer(ctx, cid); err != nil {
			t.Fatal(err)
		}
		return cid
	}
	mk("sleeper", "sleep", "12345")
	other := mk("looker", "sleep", "600")
	out, _, err := d.rs.ExecSync(ctx, other, []string{"sh", "-c", "ps -o pid,args; cat /proc/1/cmdline"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "sleep 12345") || !strings.Contains(string(out), "berth-pause") {
		t.Fatalf("the pod's processes are not shared:\n%s", out)
	}
	if err := d.rs.StopPodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	if p := processesMentioning("berth-pause " + d.state); len(p) > 0 {
		t.Fatalf("pause left after StopPodSandbox: %v", p)
	}
	if err := d.rs.RemovePodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, d)
}

// TestOrphanWithoutRuntimeState: the shim dies while berthd is down and the
// runtime's state for the container is gone too (a wiped /run): on restart
// the container is ended through its cgroup, checked gone, and reported.
func TestOrphanWithoutRuntimeState(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	podID, cid, _ := startPod(t, d, "orphan", nil, "sh", "-c", "sleep 601 & sleep 602")
	ctx := context.Background()
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range processesMentioning("berth-shim --dir " + filepath.Join(d.state, "containers", cid)) {
		pid, _, _ := strings.Cut(p, ":")
		n, _ := strconv.Atoi(pid)
		_ = syscall.Kill(n, syscall.SIGKILL)
	}
	if err := os.RemoveAll(filepath.Join(d.state, "runtime", "berth", cid)); err != nil {
		t.Fatal(err)
	}
	d.start(fixtures.Binaries(t))
	st := waitExited(t, d, cid)
	if st.ExitCode != 255 || !strings.Contains(st.Message, "shim died") || strings.Contains(st.Message, "may still run") {
		t.Fatalf("after the restart: code %d message %q", st.ExitCode, st.Message)
	}
	for _, c := range []string{"sleep 601", "sleep 602"} {
		if p := processesMentioning(c); len(p) > 0 {
			t.Fatalf("%s still runs: %v", c, p)
		}
	}
	if err := d.rs.RemovePodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, d)
}

// TestCRIStopSignal: a container's stop_signal (a pod's
// lifecycle.stopSignal) is what StopContainer sends and what
// ContainerStatus shows; without one, the image's STOPSIGNAL, else SIGTERM.
func TestCRIStopSignal(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ctx := context.Background()
	reg := fixtures.Registry(t)
	plain := fixtures.PushBusybox(t, reg)
	usr2 := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}, StopSignal: "SIGUSR2"}), reg, "library/stopsig:1")
	for _, ref := range []string{plain, usr2} {
		if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	pod := podConfig("stopsig", filepath.Join(d.dir, "pods", "stopsig"))
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	// Each traps one signal and exits 0 on it: SIGTERM would kill it (143).
	trap := func(sig string) []string {
		return []string{"sh", "-c", "trap 'echo got-" + sig + "; exit 0' " + sig + "; echo ready; while :; do sleep 0.1; done"}
	}
	for _, c := range []struct {
		name, image string
		sig         runtimeapi.Signal
		trap        string
		want        runtimeapi.Signal
	}{
		{"given", plain, runtimeapi.Signal_SIGNAL_SIGUSR1, "USR1", runtimeapi.Signal_SIGNAL_SIGUSR1},
		{"image", usr2, runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "USR2", runtimeapi.Signal_SIGNAL_SIGUSR2},
		{"default", plain, runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "TERM", runtimeapi.Signal_SIGNAL_SIGTERM},
	} {
		cid, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: c.name}, Image: &runtimeapi.ImageSpec{Image: c.image},
			Command: trap(c.trap), StopSignal: c.sig, LogPath: c.name + ".log",
		}, pod)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.rs.StartContainer(ctx, cid); err != nil {
			t.Fatal(err)
		}
		log := filepath.Join(d.dir, "pods", "stopsig", c.name+".log")
		for i := 0; i < 100; i++ { // the trap is set once it said ready
			if b, _ := os.ReadFile(log); strings.Contains(string(b), "ready") {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := d.rs.StopContainer(ctx, cid, 10); err != nil {
			t.Fatal(err)
		}
		st, err := d.rs.ContainerStatus(ctx, cid, false)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(log)
		if st.Status.ExitCode != 0 || !strings.Contains(string(b), "got-"+c.trap) {
			t.Errorf("%s: exit %d, log %q: the container did not get SIG%s", c.name, st.Status.ExitCode, b, c.trap)
		}
		if st.Status.StopSignal != c.want {
			t.Errorf("%s: ContainerStatus.stop_signal %v, want %v", c.name, st.Status.StopSignal, c.want)
		}
	}
	if _, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "bad"}, Image: &runtimeapi.ImageSpec{Image: plain}, StopSignal: 999,
	}, pod); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "stop_signal") {
		t.Errorf("stop_signal 999: %v, want InvalidArgument naming stop_signal", err)
	}
	if err := d.rs.StopPodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	if err := d.rs.RemovePodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, d)
}

// assertMountSeed: berth-runtime made the container's mount namespace from
// berthd's mount seed.
func assertMountSeed(t *testing.T, d *daemon, cid string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.state, "runtime", "berth", cid, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ MountSeed bool }
	if err := json.Unmarshal(b, &st); err != nil || !st.MountSeed {
		t.Fatalf("container %s was not made from berthd's mount seed (%v): %s", cid, err, b)
	}
}
