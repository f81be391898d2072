package e2e

import (
	"context"
	"testing"
	"time"

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
