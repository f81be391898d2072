package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestContainerStats: a container that burns CPU, holds memory and writes
// 8 MiB to its root filesystem shows all three in ContainerStats, and
// ListContainerStats filters by pod and by label.
func TestContainerStats(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ctx := context.Background()
	podID, cid, _ := startPod(t, d, "stats", nil, "sh", "-c",
		"dd if=/dev/zero of=/written bs=1M count=8 2>/dev/null; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 600")
	var st *runtimeapi.ContainerStats
	for range 100 {
		var err error
		if st, err = d.rs.ContainerStats(ctx, cid); err != nil {
			t.Fatal(err)
		}
		if st.GetWritableLayer().GetUsedBytes().GetValue() >= 8<<20 && st.GetCpu().GetUsageCoreNanoSeconds().GetValue() > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.GetAttributes().GetId() != cid || st.GetAttributes().GetMetadata().GetName() != "stats" {
		t.Fatalf("attributes: %+v", st.GetAttributes())
	}
	if st.GetCpu().GetTimestamp() == 0 || st.GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 {
		t.Fatalf("cpu: %+v", st.GetCpu())
	}
	if m := st.GetMemory(); m.GetTimestamp() == 0 || m.GetUsageBytes().GetValue() == 0 || m.GetWorkingSetBytes().GetValue() > m.GetUsageBytes().GetValue() {
		t.Fatalf("memory: %+v", m)
	}
	if w := st.GetWritableLayer(); w.GetUsedBytes().GetValue() < 8<<20 || w.GetInodesUsed().GetValue() == 0 || w.GetFsId().GetMountpoint() == "" {
		t.Fatalf("writable layer: %+v", w)
	}
	for _, c := range []struct {
		filter *runtimeapi.ContainerStatsFilter
		want   int
	}{
		{nil, 1},
		{&runtimeapi.ContainerStatsFilter{PodSandboxId: podID}, 1},
		{&runtimeapi.ContainerStatsFilter{Id: cid[:12]}, 1},
		{&runtimeapi.ContainerStatsFilter{PodSandboxId: "0000"}, 0},
		{&runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"nope": "x"}}, 0},
	} {
		list, err := d.rs.ListContainerStats(ctx, c.filter)
		if err != nil || len(list) != c.want {
			t.Fatalf("ListContainerStats(%+v): %d stats, %v; want %d", c.filter, len(list), err, c.want)
		}
	}
	if _, err := d.rs.ContainerStats(ctx, "nonexistent"); err == nil {
		t.Fatal("stats of a missing container: no error")
	}
}

// TestImageVolume: an image mounted read-only as a volume, whole or a
// sub-path of it; its digest in ContainerStatus; its mounts gone with the
// container; a sub-path the image lacks refused by name.
func TestImageVolume(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ctx := context.Background()
	ref := pulledBusybox(t, d)
	// The volume is an image of its own, used by no container as its image.
	volRef := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Env: []string{"VOLUME=1"}}), fixtures.Registry(t), "library/volume:1")
	if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: volRef}, nil, nil); err != nil {
		t.Fatal(err)
	}
	img, err := d.is.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: volRef}, false)
	if err != nil {
		t.Fatal(err)
	}
	pod := podConfig("imgvol", d.dir+"/pods/imgvol")
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	vol := func(path, sub string) *runtimeapi.Mount {
		return &runtimeapi.Mount{ContainerPath: path, Readonly: true, Image: &runtimeapi.ImageSpec{Image: volRef}, ImageSubPath: sub}
	}
	cid, err := d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "imgvol"}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: []string{"sleep", "600"}, Mounts: []*runtimeapi.Mount{vol("/whole", ""), vol("/etc-of-image", "etc")},
	}, pod)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.rs.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	out, _, err := d.rs.ExecSync(ctx, cid, []string{"sh", "-c", "/whole/bin/busybox true && head -1 /etc-of-image/passwd && ! touch /whole/x 2>/dev/null && echo ro"}, 10*time.Second)
	if err != nil || string(out) != "root:x:0:0:root:/root:/bin/sh\nro\n" {
		t.Fatalf("image volumes in the container: %q %v", out, err)
	}
	st, err := d.rs.ContainerStatus(ctx, cid, false)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, m := range st.GetStatus().GetMounts() {
		if m.GetImage().GetImageRef() == img.GetImage().GetId() {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("image volumes in ContainerStatus: %+v, want 2 with ref %s", st.GetStatus().GetMounts(), img.GetImage().GetId())
	}
	// An image mounted as a volume is in use: garbage collection keeps it.
	if err := d.is.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: img.GetImage().GetId()}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("removing an image a volume uses: %v", err)
	}
	_, err = d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "badsub"}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: []string{"true"}, Mounts: []*runtimeapi.Mount{vol("/x", "no/such/dir")},
	}, pod)
	if err == nil || !strings.Contains(err.Error(), "no/such/dir") {
		t.Fatalf("missing sub-path: %v", err)
	}
	if err := d.rs.RemovePodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, d)
}
