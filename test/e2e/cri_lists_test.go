package e2e

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestCRIStreamingLists: kubelet's streaming lists answer what the List
// calls answer, filters included, in messages that stay under gRPC's
// limit when the List call's answer would not (17 containers with 1 MiB of
// labels each: over kubelet's 16 MiB). Checkpoint calls are refused as
// Unimplemented, naming CRIU.
func TestCRIStreamingLists(t *testing.T) {
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ctx := context.Background()
	ref := pulledBusybox(t, d)
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.MaxCallSendMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rs := runtimeapi.NewRuntimeServiceClient(conn)
	is := runtimeapi.NewImageServiceClient(conn)

	// Six pods, so that no one pod's stats (its containers' labels with
	// them) is over the limit by itself.
	var pods []string
	var configs []*runtimeapi.PodSandboxConfig
	for i := 0; i < 6; i++ {
		name := "lists" + strconv.Itoa(i)
		pod := podConfig(name, filepath.Join(d.dir, "pods", name))
		podID, err := d.rs.RunPodSandbox(ctx, pod, "")
		if err != nil {
			t.Fatal(err)
		}
		pods, configs = append(pods, podID), append(configs, pod)
	}
	podID := pods[0]
	big := strings.Repeat("x", 1<<20)
	const n = 17
	for i := 0; i < n; i++ {
		group := []string{"a", "b"}[i%2]
		_, err := rs.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pods[i%6], SandboxConfig: configs[i%6], Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "c" + strconv.Itoa(i)}, Image: &runtimeapi.ImageSpec{Image: ref},
			Command: []string{"sleep", "600"}, Labels: map[string]string{"group": group, "big": big},
		}})
		if err != nil {
			t.Fatalf("create c%d: %v", i, err)
		}
	}

	// The case streaming is for: List's one answer is over kubelet's limit.
	if _, err := rs.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("ListContainers of %d MiB of labels: %v, want it over the 16 MiB limit", n, err)
	}
	ids := func(cs []*runtimeapi.Container) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Id)
		}
		slices.Sort(out)
		return out
	}
	for _, filter := range []*runtimeapi.ContainerFilter{nil, {LabelSelector: map[string]string{"group": "b"}}, {PodSandboxId: podID, State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_CREATED}}} {
		st, err := rs.StreamContainers(ctx, &runtimeapi.StreamContainersRequest{Filter: filter})
		if err != nil {
			t.Fatal(err)
		}
		var got []*runtimeapi.Container
		msgs := 0
		for {
			m, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("StreamContainers %v: %v", filter, err)
			}
			if size := proto.Size(m); size > 4<<20 {
				t.Errorf("a message of %d bytes", size)
			}
			msgs++
			got = append(got, m.Containers...)
		}
		// What List answers, to a client that takes up to 64 MiB.
		all, err := rs.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: filter}, grpc.MaxCallRecvMsgSize(64<<20))
		if err != nil {
			t.Fatal(err)
		}
		if len(all.Containers) == 0 || filter == nil && len(all.Containers) != n || !slices.Equal(ids(got), ids(all.Containers)) || len(got) > 2 && msgs < 2 {
			t.Errorf("StreamContainers %v: %d containers in %d messages, List %d", filter, len(got), msgs, len(all.Containers))
		}
	}

	// The other streams answer as their List calls.
	recvAll := func(recv func() (int, error)) int {
		total := 0
		for {
			k, err := recv()
			if errors.Is(err, io.EOF) {
				return total
			}
			if err != nil {
				t.Fatal(err)
			}
			total += k
		}
	}
	sbs, err := rs.StreamPodSandboxes(ctx, &runtimeapi.StreamPodSandboxesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := recvAll(func() (int, error) { m, err := sbs.Recv(); return len(m.GetPodSandboxes()), err }); got != len(pods) {
		t.Errorf("StreamPodSandboxes: %d pods", got)
	}
	cst, err := rs.StreamContainerStats(ctx, &runtimeapi.StreamContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: podID}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := rs.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: podID}}, grpc.MaxCallRecvMsgSize(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	if got := recvAll(func() (int, error) { m, err := cst.Recv(); return len(m.GetContainerStats()), err }); got != len(list.Stats) {
		t.Errorf("StreamContainerStats: %d, ListContainerStats %d", got, len(list.Stats))
	}
	pst, err := rs.StreamPodSandboxStats(ctx, &runtimeapi.StreamPodSandboxStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := recvAll(func() (int, error) { m, err := pst.Recv(); return len(m.GetPodSandboxStats()), err }); got != len(pods) {
		t.Errorf("StreamPodSandboxStats: %d", got)
	}
	pm, err := rs.StreamPodSandboxMetrics(ctx, &runtimeapi.StreamPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	lm, err := rs.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := recvAll(func() (int, error) { m, err := pm.Recv(); return len(m.GetPodSandboxMetrics()), err }); got != len(lm.PodMetrics) {
		t.Errorf("StreamPodSandboxMetrics: %d, List %d", got, len(lm.PodMetrics))
	}
	imgs, err := is.StreamImages(ctx, &runtimeapi.StreamImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := recvAll(func() (int, error) { m, err := imgs.Recv(); return len(m.GetImages()), err }); got != 1 {
		t.Errorf("StreamImages: %d images", got)
	}

	if _, err := rs.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: "x"}); status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "CRIU") {
		t.Errorf("CheckpointContainer: %v, want Unimplemented naming CRIU", err)
	}
	if _, err := rs.RestorePod(ctx, &runtimeapi.RestorePodRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("RestorePod: %v", err)
	}

	for _, id := range pods {
		if err := d.rs.StopPodSandbox(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := d.rs.RemovePodSandbox(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	assertNothingLeft(t, d)
}
