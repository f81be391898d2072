package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/test/fixtures"
)

// shimInfo is what verbose ContainerStatus says of a container's shim.
type shimInfo struct {
	Pid        int    `json:"pid"`
	Responsive bool   `json:"responsive"`
	Error      string `json:"error"`
}

func shimOf(t *testing.T, d *daemon, cid string) shimInfo {
	t.Helper()
	st, err := d.rs.ContainerStatus(context.Background(), cid, true)
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Shim shimInfo }
	if err := json.Unmarshal([]byte(st.Info["info"]), &v); err != nil {
		t.Fatalf("verbose info %q: %v", st.Info["info"], err)
	}
	return v.Shim
}

// containerPids lists the processes in the container's cgroup (the test
// pods' cgroups are /berth-e2e/<pod>/<container>).
func containerPids(t *testing.T, pod, cid string) []int {
	t.Helper()
	dirs, err := linux.CgroupDirs("/berth-e2e/" + pod + "/" + cid)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		var pids []int
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			pids = append(pids, n)
		}
		return pids
	}
	return nil
}

// alive says whether pid runs (a zombie has ended).
func alive(pid int) bool { return linux.ProcessAlive(pid, 0) }

// usage is berthd's open files and goroutines (from its pprof endpoint).
func usage(t *testing.T, d *daemon, debugAddr string) (fds, goroutines int) {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + debugAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if _, err := fmt.Sscanf(line, "goroutine profile: total %d", &goroutines); err != nil {
		t.Fatalf("pprof said %q: %v", line, err)
	}
	return len(ents), goroutines
}

// TestHungShims: three of ten shims stopped with SIGSTOP. The other seven
// serve as before; calls to the stopped ones fail with DeadlineExceeded naming
// the container and leave nothing behind in berthd; ExecSync keeps its
// timeout; stop and pod removal end the containers through their cgroups; a
// shim killed during a call fails that call at once.
func TestHungShims(t *testing.T) {
	requireCNI(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	debugAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := startDaemonWith(t, fmt.Sprintf("shim_timeout = \"500ms\"\ndebug_address = %q\n", debugAddr))
	ctx := context.Background()
	ref := pulledBusybox(t, d)

	type ctr struct{ pod, podID, cid string }
	var all []ctr
	for i := range 10 {
		name := fmt.Sprintf("hung%d", i)
		podID, cid, _ := netPod(t, d, ref, name, nil, "sleep", "600")
		all = append(all, ctr{name, podID, cid})
	}
	frozen, healthy := all[:3], all[3:]
	var shimPids []int
	for _, c := range frozen {
		info := shimOf(t, d, c.cid)
		if !info.Responsive || info.Pid <= 0 {
			t.Fatalf("shim of %s before the test: %+v", c.cid, info)
		}
		shimPids = append(shimPids, info.Pid)
	}
	fds0, gr0 := usage(t, d, debugAddr)
	for _, pid := range shimPids {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	}

	// The others answer as before.
	if pods, err := d.rs.ListPodSandbox(ctx, nil); err != nil || len(pods) != 10 {
		t.Fatalf("list pods: %d %v", len(pods), err)
	}
	for _, c := range healthy {
		if out, _, err := d.rs.ExecSync(ctx, c.cid, []string{"echo", "ok"}, 5*time.Second); err != nil || string(out) != "ok\n" {
			t.Fatalf("exec in healthy %s: %q %v", c.cid, out, err)
		}
	}
	// Verbose status names the stuck shim.
	if info := shimOf(t, d, frozen[0].cid); info.Responsive || !strings.Contains(info.Error, frozen[0].cid) {
		t.Fatalf("verbose status of a stopped shim: %+v", info)
	}

	// 100 calls into stopped shims: each fails with DeadlineExceeded naming the container.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := frozen[i%len(frozen)]
			err := d.rs.ReopenContainerLog(ctx, c.cid)
			if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), c.cid) {
				errs <- fmt.Errorf("ReopenContainerLog of %s: %v", c.cid, err)
			}
		}()
		if i%10 == 9 {
			wg.Wait()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var fds1, gr1 int
	for range 100 {
		if fds1, gr1 = usage(t, d, debugAddr); fds1 <= fds0+2 && gr1 <= gr0+5 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fds1 > fds0+2 || gr1 > gr0+5 {
		t.Fatalf("after 100 calls to stopped shims: fds %d → %d, goroutines %d → %d", fds0, fds1, gr0, gr1)
	}

	// ExecSync keeps its timeout (2 s) whatever the shim does.
	start := time.Now()
	_, _, err := d.rs.ExecSync(ctx, frozen[0].cid, []string{"true"}, 2*time.Second)
	// (cri-client turns the DeadlineExceeded into its own "timed out" error.)
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "timed out") || took < 2*time.Second || took > 4*time.Second {
		t.Fatalf("ExecSync --timeout 2 into a stopped shim: %v after %v", err, took)
	}

	// Stop with a grace period: the container's processes end, its status says why.
	pids := containerPids(t, frozen[0].pod, frozen[0].cid)
	if len(pids) == 0 {
		t.Fatal("no process in the container's cgroup")
	}
	if err := d.rs.StopContainer(ctx, frozen[0].cid, 2); err != nil {
		t.Fatalf("stop with a stopped shim: %v", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Fatalf("container process %d still alive after stop", pid)
		}
	}
	if alive(shimPids[0]) {
		t.Fatal("the stopped shim was left behind")
	}
	st, err := d.rs.ContainerStatus(ctx, frozen[0].cid, false)
	if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_EXITED || !strings.Contains(st.Status.Message, "shim did not answer") {
		t.Fatalf("status after stop: %+v %v", st.GetStatus(), err)
	}
	if err := d.rs.RemoveContainer(ctx, frozen[0].cid); err != nil {
		t.Fatal(err)
	}

	// RemovePodSandbox of a pod whose shim is stopped.
	pids = containerPids(t, frozen[1].pod, frozen[1].cid)
	if err := d.rs.StopPodSandbox(ctx, frozen[1].podID); err != nil {
		t.Fatal(err)
	}
	if err := d.rs.RemovePodSandbox(ctx, frozen[1].podID); err != nil {
		t.Fatal(err)
	}
	for _, pid := range append(pids, shimPids[1]) {
		if alive(pid) {
			t.Fatalf("process %d alive after the pod's removal", pid)
		}
	}

	// A shim killed with SIGKILL while a call to it is in flight: the call
	// fails, the container is reported exited, its processes are gone.
	victim := healthy[0]
	vinfo := shimOf(t, d, victim.cid)
	vpids := containerPids(t, victim.pod, victim.cid)
	done := make(chan error, 1)
	go func() {
		_, _, err := d.rs.ExecSync(ctx, victim.cid, []string{"sleep", "30"}, 60*time.Second)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(vinfo.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("ExecSync succeeded though its shim was killed")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ExecSync still waiting 20 s after its shim was killed")
	}
	for range 200 {
		st, err := d.rs.ContainerStatus(ctx, victim.cid, false)
		if err == nil && st.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range vpids {
		if alive(pid) {
			t.Fatalf("process %d of the container whose shim was killed is alive", pid)
		}
	}

	// Everything goes, stopped shim or not.
	d.removeAllPods()
	assertNothingLeft(t, d)
}
