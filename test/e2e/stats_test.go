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

// TestPodStatsAndMetrics: a pod's stats (CPU and its rate, memory,
// processes, its network interface, its containers) and its CRI metrics,
// in cAdvisor's names with as many label values as the descriptors have
// keys, and values that match the container's limits and labels.
func TestPodStatsAndMetrics(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ctx := context.Background()
	podID, cid, _ := startPod(t, d, "podstats", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20},
		"sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 600")
	var st *runtimeapi.PodSandboxStats
	for range 50 {
		r, err := d.rs.PodSandboxStats(ctx, podID)
		if err != nil {
			t.Fatal(err)
		}
		if st = r; st.GetLinux().GetCpu().GetUsageNanoCores() != nil && st.GetLinux().GetMemory().GetWorkingSetBytes().GetValue() > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	l := st.GetLinux()
	if st.GetAttributes().GetId() != podID || st.GetAttributes().GetMetadata().GetName() != "podstats" {
		t.Fatalf("attributes: %+v", st.GetAttributes())
	}
	if l.GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 || l.GetCpu().GetUsageNanoCores() == nil {
		t.Fatalf("cpu: %+v", l.GetCpu())
	}
	if l.GetMemory().GetUsageBytes().GetValue() == 0 || l.GetProcess().GetProcessCount().GetValue() == 0 {
		t.Fatalf("memory %+v, processes %+v", l.GetMemory(), l.GetProcess())
	}
	if n := l.GetNetwork(); n.GetDefaultInterface().GetName() != "eth0" || n.GetDefaultInterface().GetTxBytes() == nil {
		t.Fatalf("network: %+v", n)
	}
	if len(l.GetContainers()) != 1 || l.GetContainers()[0].GetAttributes().GetId() != cid {
		t.Fatalf("containers: %+v", l.GetContainers())
	}
	for _, c := range []struct {
		f    *runtimeapi.PodSandboxStatsFilter
		want int
	}{{nil, 1}, {&runtimeapi.PodSandboxStatsFilter{Id: podID[:10]}, 1}, {&runtimeapi.PodSandboxStatsFilter{Id: "0000"}, 0},
		{&runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"nope": "x"}}, 0}} {
		if list, err := d.rs.ListPodSandboxStats(ctx, c.f); err != nil || len(list) != c.want {
			t.Fatalf("ListPodSandboxStats(%+v): %d, %v; want %d", c.f, len(list), err, c.want)
		}
	}
	if _, err := d.rs.PodSandboxStats(ctx, "nonexistent"); status.Code(err) != codes.NotFound {
		t.Fatalf("stats of a missing pod: %v", err)
	}

	descs, err := d.rs.ListMetricDescriptors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, d := range descs {
		keys[d.Name] = d.LabelKeys
	}
	metrics, err := d.rs.ListPodSandboxMetrics(ctx)
	if err != nil || len(metrics) != 1 || metrics[0].PodSandboxId != podID || len(metrics[0].ContainerMetrics) != 1 {
		t.Fatalf("ListPodSandboxMetrics: %+v %v", metrics, err)
	}
	value := map[string]uint64{}
	check := func(m *runtimeapi.Metric) {
		k, ok := keys[m.Name]
		if !ok || len(k) != len(m.LabelValues) {
			t.Errorf("%s: labels %v for keys %v", m.Name, m.LabelValues, k)
		}
		labels := map[string]string{}
		for i := range k {
			labels[k[i]] = m.LabelValues[i]
		}
		if labels["pod"] != "podstats" || labels["namespace"] != "default" {
			t.Errorf("%s: labels %v", m.Name, labels)
		}
		value[m.Name+"/"+labels["container"]+"/"+labels["interface"]] = m.Value.GetValue()
	}
	for _, m := range metrics[0].Metrics {
		check(m)
	}
	for _, m := range metrics[0].ContainerMetrics[0].Metrics {
		check(m)
	}
	if _, ok := value["container_network_transmit_bytes_total//eth0"]; !ok {
		t.Errorf("no network metrics for the pod's eth0: %v", value)
	}
	for name, ok := range map[string]bool{
		"container_memory_working_set_bytes/podstats/": value["container_memory_working_set_bytes/podstats/"] > 0,
		"container_spec_memory_limit_bytes/podstats/":  value["container_spec_memory_limit_bytes/podstats/"] == 64<<20,
		"container_file_descriptors/podstats/":         value["container_file_descriptors/podstats/"] > 0,
		"container_processes/podstats/":                value["container_processes/podstats/"] >= 1,
		"container_ulimits_soft/podstats/":             value["container_ulimits_soft/podstats/"] > 0,
		"container_start_time_seconds/podstats/":       value["container_start_time_seconds/podstats/"] > 1.7e9,
	} {
		if !ok {
			t.Errorf("%s = %d", name, value[name])
		}
	}
}
