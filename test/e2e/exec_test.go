package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/test/fixtures"
)

// startPod pulls busybox and runs one container with cmd in a fresh pod.
// pulledBusybox pushes the busybox fixture to a registry of the test's and
// has d pull it; it returns the reference.
func pulledBusybox(t *testing.T, d *daemon) string {
	t.Helper()
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	if _, err := d.is.PullImage(context.Background(), &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
		t.Fatal(err)
	}
	return ref
}

func startPod(t *testing.T, d *daemon, name string, res *runtimeapi.LinuxContainerResources, cmd ...string) (podID, cid, logPath string) {
	t.Helper()
	ctx := context.Background()
	ref := pulledBusybox(t, d)
	logDir := filepath.Join(d.dir, "pods", name)
	pod := podConfig(name, logDir)
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.rs.RemovePodSandbox(context.Background(), podID) })
	cid, err = d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: cmd, LogPath: name + ".log", Linux: &runtimeapi.LinuxContainerConfig{Resources: res},
	}, pod)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.rs.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	return podID, cid, filepath.Join(logDir, name+".log")
}

func TestExecSync(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	_, cid, _ := startPod(t, d, "execsync", nil, "sleep", "600")
	ctx := context.Background()

	out, errOut, err := d.rs.ExecSync(ctx, cid, []string{"sh", "-c", "echo out; echo err >&2; hostname"}, 10*time.Second)
	if err != nil || string(out) != "out\nexecsync\n" || string(errOut) != "err\n" {
		t.Fatalf("ExecSync: %q %q %v", out, errOut, err)
	}
	_, _, err = d.rs.ExecSync(ctx, cid, []string{"sh", "-c", "exit 3"}, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited with 3") {
		t.Fatalf("ExecSync exit 3: %v", err)
	}
	// cri-client, like kubelet, turns DeadlineExceeded into its timeout error.
	_, _, err = d.rs.ExecSync(ctx, cid, []string{"sleep", "30"}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("ExecSync past its timeout: %v", err)
	}
	_, _, err = d.rs.ExecSync(ctx, "0123456789abcdef", []string{"true"}, time.Second)
	if status.Code(err) != codes.NotFound {
		t.Fatalf("ExecSync in an unknown container: %v", err)
	}
	// The timed-out process was killed, not left running in the container.
	out, _, err = d.rs.ExecSync(ctx, cid, []string{"sh", "-c", "ps -o args | grep -c '^sleep 30' || true"}, 10*time.Second)
	if err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Fatalf("after the timeout, sleep 30 processes: %q %v", out, err)
	}
	_, _, err = d.rs.ExecSync(ctx, cid, []string{"no-such-command"}, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "no-such-command") {
		t.Fatalf("ExecSync of a missing command: %v", err)
	}
	// Probes come in parallel: each gets its own output and exit code.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _, err := d.rs.ExecSync(ctx, cid, []string{"sh", "-c", fmt.Sprintf("echo %d; exit %d", i, i%2)}, 10*time.Second)
			if strings.TrimSpace(string(out)) != fmt.Sprint(i) || (i%2 == 1) != (err != nil) {
				errs <- fmt.Errorf("exec %d: %q %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestOOMKilledReason(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	_, cid, _ := startPod(t, d, "oom", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20, MemorySwapLimitInBytes: 16 << 20},
		"awk", `BEGIN { s = "a"; while (1) s = s s }`)
	st := waitExited(t, d, cid)
	if st.Reason != "OOMKilled" || st.ExitCode != 137 {
		t.Fatalf("reason %q code %d, want OOMKilled 137", st.Reason, st.ExitCode)
	}
}

func TestReopenContainerLog(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	_, cid, logPath := startPod(t, d, "rotate", nil, "sh", "-c", "echo before; while [ ! -e /tmp/go ]; do sleep 0.02; done; echo after; sleep 600")
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := os.ReadFile(logPath); strings.Contains(string(b), "before") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no output before rotation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := d.rs.ReopenContainerLog(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.rs.ExecSync(ctx, cid, []string{"touch", "/tmp/go"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "after") {
			if strings.Contains(string(b), "before") {
				t.Fatal("the new log repeats a line of the old one")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no output after rotation: %q", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	old, _ := os.ReadFile(logPath + ".1")
	if !strings.Contains(string(old), "before") || strings.Contains(string(old), "after") {
		t.Fatalf("rotated log: %q", old)
	}
}

func TestUpdateContainerResources(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	podID, cid, _ := startPod(t, d, "resize", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}, "sleep", "600")
	ctx := context.Background()
	read := func() string {
		out, _, err := d.rs.ExecSync(ctx, cid, []string{"sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"}, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	if got := read(); got != "67108864" {
		t.Fatalf("limit before: %s", got)
	}
	if err := d.rs.UpdateContainerResources(ctx, cid, &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20, CpuShares: 512}}); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "134217728" {
		t.Fatalf("limit after: %s", got)
	}
	// ContainerStatus shows what was applied (kubelet reads the resize back there).
	st, err := d.rs.ContainerStatus(ctx, cid, false)
	if err != nil {
		t.Fatal(err)
	}
	if res := st.Status.GetResources().GetLinux(); res.GetMemoryLimitInBytes() != 128<<20 || res.GetCpuShares() != 512 {
		t.Fatalf("ContainerStatus.resources after the resize: %v", res)
	}
	// A limit below what the container uses now is refused, and nothing of
	// the request (its CPU neither) is applied.
	if _, _, err := d.rs.ExecSync(ctx, cid, []string{"dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=40"}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	err = d.rs.UpdateContainerResources(ctx, cid, &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20, CpuShares: 256}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "below") {
		t.Fatalf("a limit below the usage: %v, want FailedPrecondition", err)
	}
	if got := read(); got != "134217728" {
		t.Fatalf("limit after a refused resize: %s", got)
	}
	if st, _ := d.rs.ContainerStatus(ctx, cid, false); st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.Status.GetResources().GetLinux().GetCpuShares() != 512 {
		t.Fatalf("after a refused resize: %v %v", st.Status.State, st.Status.GetResources())
	}
	// The pod's cgroup: its containers' sum with the overhead; below its
	// usage refused the same way.
	podLimit := func() string {
		dirs, err := linux.CgroupDirs("/berth-e2e/resize")
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range dirs {
			for _, f := range []string{"memory.limit_in_bytes", "memory.max"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					return strings.TrimSpace(string(b))
				}
			}
		}
		t.Fatalf("no memory limit file for the pod's cgroup in %v", dirs)
		return ""
	}
	if _, err := d.rs.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: podID,
		Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 200 << 20, CpuShares: 512},
		Overhead:  &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 8 << 20}}); err != nil {
		t.Fatal(err)
	}
	if got := podLimit(); got != strconv.Itoa(208<<20) {
		t.Fatalf("the pod's memory limit after its resize: %s, want %d", got, 208<<20)
	}
	if _, err := d.rs.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: podID,
		Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20}}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a pod limit below its usage: %v, want FailedPrecondition", err)
	}
	if got := podLimit(); got != strconv.Itoa(208<<20) {
		t.Fatalf("the pod's limit after a refused resize: %s", got)
	}
	if _, err := d.rs.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: "nosuch"}); status.Code(err) != codes.NotFound {
		t.Fatalf("resize of an unknown pod: %v", err)
	}
	if err := d.rs.UpdateContainerResources(ctx, "0123456789abcdef", &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{}}); status.Code(err) != codes.NotFound {
		t.Fatalf("update of an unknown container: %v", err)
	}
}

// TestContainerEvents: a container's life arrives as events, in order,
// pushed as it happens.
func TestContainerEvents(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := make(chan *runtimeapi.ContainerEventResponse, 64)
	connected := make(chan struct{})
	go func() {
		_ = d.rs.GetContainerEvents(ctx, evs, func(runtimeapi.RuntimeService_GetContainerEventsClient) { close(connected) })
	}()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("no event stream")
	}
	time.Sleep(100 * time.Millisecond) // the server has subscribed
	podID, cid, _ := startPod(t, d, "events", nil, "echo", "hi")
	waitExited(t, d, cid)
	if err := d.rs.RemoveContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	want := []runtimeapi.ContainerEventType{
		runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
	}
	for i, w := range want {
		select {
		case ev := <-evs:
			if ev.ContainerId != cid || ev.ContainerEventType != w || ev.PodSandboxStatus.GetId() != podID {
				t.Fatalf("event %d: %v for %s in %s, want %v", i, ev.ContainerEventType, ev.ContainerId, ev.PodSandboxStatus.GetId(), w)
			}
			if w == runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT && (len(ev.ContainersStatuses) != 1 || ev.ContainersStatuses[0].State != runtimeapi.ContainerState_CONTAINER_EXITED) {
				t.Fatalf("stopped event's statuses: %v", ev.ContainersStatuses)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event %d (%v)", i, w)
		}
	}
}

// TestStopSemantics: the image's StopSignal; SIGKILL once the timeout passes;
// RemoveContainer kills a running container first.
func TestStopSemantics(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ctx := context.Background()
	host := fixtures.Registry(t)
	usr1 := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}, StopSignal: "SIGUSR1"}), host, "library/usr1:1")
	ref := fixtures.PushBusybox(t, host)
	for _, r := range []string{usr1, ref} {
		if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: r}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	pod := podConfig("stops", filepath.Join(d.dir, "pods", "stops"))
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.rs.RemovePodSandbox(context.Background(), podID) })
	run := func(name, image string, cmd ...string) string {
		cid, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: image}, Command: cmd,
		}, pod)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.rs.StartContainer(ctx, cid); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // the traps are set
		return cid
	}
	// The image says SIGUSR1: the trap for it decides the exit code.
	c1 := run("usr1", usr1, "sh", "-c", "trap 'exit 10' USR1; trap 'exit 20' TERM; while true; do sleep 0.05; done")
	if err := d.rs.StopContainer(ctx, c1, 10); err != nil {
		t.Fatal(err)
	}
	if st := waitExited(t, d, c1); st.ExitCode != 10 {
		t.Fatalf("stop with the image's StopSignal: exit %d, want 10", st.ExitCode)
	}
	// A process that ignores SIGTERM is killed at the timeout.
	c2 := run("stubborn", ref, "sh", "-c", "trap '' TERM; while true; do sleep 0.05; done")
	if err := d.rs.StopContainer(ctx, c2, 1); err != nil {
		t.Fatal(err)
	}
	if st := waitExited(t, d, c2); st.ExitCode != 137 {
		t.Fatalf("stop past the timeout: exit %d, want 137", st.ExitCode)
	}
	// Removing a running container kills it.
	c3 := run("removed", ref, "sleep", "600")
	if err := d.rs.RemoveContainer(ctx, c3); err != nil {
		t.Fatal(err)
	}
	if _, err := d.rs.ContainerStatus(ctx, c3, false); status.Code(err) != codes.NotFound {
		t.Fatalf("status after remove: %v", err)
	}
	if p := processesMentioning("sleep 600"); len(p) > 0 {
		t.Fatalf("the removed container still runs: %v", p)
	}
}
