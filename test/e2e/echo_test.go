// Package e2e drives real berthd processes through the CRI, with
// k8s.io/cri-client (the client kubelet and crictl use).
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/test/fixtures"
)

func podConfig(name, logDir string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Uid: name + "-uid", Namespace: "default"},
		Hostname:     name,
		LogDirectory: logDir,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "/berth-e2e/" + name,
		},
	}
}

// TestEchoPod is the thin slice: pull, run a pod, echo, read the log, remove
// everything, and find nothing left behind.
func TestEchoPod(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e/echo")
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	host := fixtures.Registry(t)
	ref := fixtures.PushBusybox(t, host)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	v, err := d.rs.Version(ctx, "v1")
	if err != nil || v.RuntimeName != "berth" || v.RuntimeApiVersion != "v1" {
		t.Fatalf("Version: %+v %v", v, err)
	}
	st, err := d.rs.Status(ctx, false)
	if err != nil || len(st.Status.Conditions) == 0 || !st.Status.Conditions[0].Status {
		t.Fatalf("Status: %+v %v", st, err)
	}

	imageID, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil)
	if err != nil || !strings.HasPrefix(imageID, "sha256:") {
		t.Fatalf("PullImage: %q %v", imageID, err)
	}
	img, err := d.is.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: ref}, true)
	if err != nil || img.Image == nil || img.Image.Id != imageID || img.Image.Size == 0 {
		t.Fatalf("ImageStatus: %+v %v", img, err)
	}
	var info struct {
		ChainIDs  []string `json:"chainIDs"`
		ImageSpec struct {
			Config struct{ Cmd []string } `json:"config"`
		} `json:"imageSpec"`
	}
	if err := json.Unmarshal([]byte(img.Info["info"]), &info); err != nil || len(info.ChainIDs) != 1 || len(info.ImageSpec.Config.Cmd) == 0 {
		t.Fatalf("ImageStatus verbose info %q: %v", img.Info["info"], err)
	}
	list, err := d.is.ListImages(ctx, nil)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListImages: %v %v", list, err)
	}

	logDir := filepath.Join(d.dir, "pods", "echo")
	pod := podConfig("echo", logDir)
	t0 := time.Now()
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	cid, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "echo"},
		Image:    &runtimeapi.ImageSpec{Image: ref},
		Command:  []string{"echo", "hello"},
		LogPath:  "echo/0.log",
		Linux: &runtimeapi.LinuxContainerConfig{
			// kubelet asks this for guaranteed pods; root here cannot set it.
			Resources: &runtimeapi.LinuxContainerResources{OomScoreAdj: -997},
		},
	}, pod)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if err := d.rs.StartContainer(ctx, cid); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	cs := waitExited(t, d, cid)
	t.Logf("RunPodSandbox to container exit: %v", time.Since(t0))
	if cs.ExitCode != 0 || cs.StartedAt == 0 || cs.FinishedAt < cs.StartedAt || cs.ImageRef != imageID {
		t.Fatalf("ContainerStatus: %+v", cs)
	}
	b, err := os.ReadFile(filepath.Join(logDir, "echo/0.log"))
	if err != nil || !strings.HasSuffix(string(b), " stdout F hello\n") {
		t.Fatalf("log: %q %v", b, err)
	}

	ctrs, err := d.rs.ListContainers(ctx, &runtimeapi.ContainerFilter{PodSandboxId: podID})
	if err != nil || len(ctrs) != 1 || ctrs[0].Id != cid {
		t.Fatalf("ListContainers: %v %v", ctrs, err)
	}
	pods, err := d.rs.ListPodSandbox(ctx, nil)
	if err != nil || len(pods) != 1 || pods[0].State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("ListPodSandbox: %v %v", pods, err)
	}

	if err := d.rs.StopContainer(ctx, cid, 10); err != nil {
		t.Fatalf("StopContainer of an exited container: %v", err)
	}
	if err := d.is.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: imageID}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("RemoveImage of an image a container uses: %v", err)
	}
	if err := d.rs.RemoveContainer(ctx, cid); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	if err := d.rs.StopPodSandbox(ctx, podID); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	if err := d.rs.RemovePodSandbox(ctx, podID); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
	// Both are idempotent.
	if err := d.rs.RemoveContainer(ctx, cid); err != nil {
		t.Fatalf("second RemoveContainer: %v", err)
	}
	if err := d.rs.StopPodSandbox(ctx, podID); err != nil {
		t.Fatalf("second StopPodSandbox: %v", err)
	}
	if err := d.is.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: imageID}); err != nil {
		t.Fatalf("RemoveImage: %v", err)
	}
	if st, err := d.is.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: ref}, false); err != nil || st.Image != nil {
		t.Fatalf("ImageStatus after RemoveImage: %+v %v", st, err)
	}
	for _, sub := range []string{"snapshots/layers", "snapshots/containers", "content/blobs/sha256"} {
		if ents, _ := os.ReadDir(filepath.Join(d.root, sub)); len(ents) != 0 {
			t.Errorf("%s holds %d entries after removing everything", sub, len(ents))
		}
	}
	assertNothingLeft(t, d)
	dirs, _ := linux.CgroupDirs("/berth-e2e/echo")
	for _, dir := range dirs {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("pod cgroup %s left behind", dir)
		}
	}
	if err := d.stop(); err != nil {
		t.Fatalf("berthd shutdown: %v", err)
	}
	// The oom_score_adj clamp is logged once, and only where it applies.
	logText, _ := os.ReadFile(d.logFile)
	n := strings.Count(string(logText), "lacks CAP_SYS_RESOURCE")
	if n > 1 || (n == 0 && !hasCapSysResource()) {
		t.Errorf("oom_score_adj clamp logged %d times", n)
	}
}

func waitExited(t *testing.T, d *daemon, cid string) *runtimeapi.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := d.rs.ContainerStatus(context.Background(), cid, false)
		if err != nil {
			t.Fatalf("ContainerStatus: %v", err)
		}
		if resp.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			return resp.Status
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s did not exit: %+v", cid, resp.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// assertNothingLeft checks for mounts under the daemon's directories,
// shims, pinned namespaces and container state.
func assertNothingLeft(t *testing.T, d *daemon) {
	t.Helper()
	if m := mountsUnder(d.dir); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	if p := processesMentioning(d.state + "/containers/"); len(p) > 0 {
		t.Errorf("processes left: %v", p)
	}
	for _, sub := range []string{"containers", "sandboxes", "s"} {
		ents, _ := os.ReadDir(filepath.Join(d.state, sub))
		if len(ents) > 0 {
			t.Errorf("%s/%s holds %d entries", d.state, sub, len(ents))
		}
	}
	for _, r := range []string{"berth", "runc", "crun"} {
		ents, _ := os.ReadDir(filepath.Join(d.state, "runtime", r))
		if len(ents) > 0 {
			t.Errorf("runtime %s still has %d containers", r, len(ents))
		}
	}
}

func hasCapSysResource() bool {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:\t"); ok {
			var caps uint64
			fmt.Sscanf(v, "%x", &caps)
			return caps&(1<<24) != 0
		}
	}
	return false
}
