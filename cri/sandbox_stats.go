package cri

import (
	"context"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/store"
)

// PodSandboxStats reports a pod's CPU, memory, network and process count,
// and its containers' stats.
func (s *Server) PodSandboxStats(ctx context.Context, r *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	if r.PodSandboxId == "" {
		return nil, invalid("PodSandboxStats: pod_sandbox_id is required")
	}
	sb, err := s.sandboxes.Get(r.PodSandboxId)
	if err != nil {
		return nil, toStatus(err)
	}
	all, err := s.containers.ListOwned("")
	if err != nil {
		return nil, toStatus(err)
	}
	ps, err := s.containers.PodStats(sb, all, false)
	if err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: podStats(ps)}, nil
}

// ListPodSandboxStats reports the stats of the pods the filter selects (by
// ID prefix and labels); a pod that went meanwhile is skipped.
func (s *Server) ListPodSandboxStats(ctx context.Context, r *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	pods, all, err := s.podsAndContainers()
	if err != nil {
		return nil, err
	}
	if f := r.GetFilter(); f != nil {
		pods = slices.DeleteFunc(pods, func(sb store.Sandbox) bool {
			return f.Id != "" && !strings.HasPrefix(sb.ID, f.Id) || !labelsMatch(sb.Labels, f.LabelSelector)
		})
	}
	out := []*runtimeapi.PodSandboxStats{}
	for _, ps := range s.containers.PodsStats(pods, all, false) {
		out = append(out, podStats(ps))
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}

func podStats(ps containers.PodStats) *runtimeapi.PodSandboxStats {
	sb := ps.Sandbox
	at := ps.At.UnixNano()
	u := func(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }
	net := &runtimeapi.NetworkUsage{Timestamp: at}
	for i, n := range ps.Network {
		iu := &runtimeapi.NetworkInterfaceUsage{Name: n.Name, RxBytes: u(n.RxBytes), RxErrors: u(n.RxErrors),
			TxBytes: u(n.TxBytes), TxErrors: u(n.TxErrors)}
		// The CNI's interface, eth0, is the default, as kubelet expects.
		if n.Name == "eth0" || i == 0 && net.DefaultInterface == nil {
			net.DefaultInterface = iu
		}
		net.Interfaces = append(net.Interfaces, iu)
	}
	l := &runtimeapi.LinuxPodSandboxStats{
		Cpu:     cpuUsage(at, ps.CPUNanos, ps.NanoCores, ps.HasRate),
		Memory:  memoryUsage(at, ps.CgroupUsage),
		Network: net,
		Process: &runtimeapi.ProcessUsage{Timestamp: at, ProcessCount: u(ps.Pids)},
	}
	for _, c := range ps.Containers {
		l.Containers = append(l.Containers, containerStats(c.Container, c.Stats))
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: sb.ID, Metadata: sandboxMetadata(sb), Labels: sb.Labels, Annotations: sb.Annotations},
		Linux:      l,
	}
}

// podsAndContainers reads both lists once for a call over every pod.
func (s *Server) podsAndContainers() ([]store.Sandbox, []store.Container, error) {
	pods, err := s.sandboxes.ListOwned("")
	if err != nil {
		return nil, nil, toStatus(err)
	}
	all, err := s.containers.ListOwned("")
	if err != nil {
		return nil, nil, toStatus(err)
	}
	return pods, all, nil
}
