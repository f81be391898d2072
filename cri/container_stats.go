package cri

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
)

// ContainerStats reports one container's CPU, memory and writable layer.
func (s *Server) ContainerStats(ctx context.Context, r *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	if r.ContainerId == "" {
		return nil, invalid("ContainerStats: container_id is required")
	}
	rec, err := s.container(r.ContainerId)
	if err != nil {
		return nil, toStatus(err)
	}
	st, err := s.containers.Stats(rec)
	if err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.ContainerStatsResponse{Stats: containerStats(rec, st)}, nil
}

// ListContainerStats reports the stats of the containers the filter selects
// (by ID prefix, pod and labels); a container that went meanwhile is skipped.
func (s *Server) ListContainerStats(ctx context.Context, r *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	all, err := s.containers.ListOwned("")
	if err != nil {
		return nil, toStatus(err)
	}
	out := []*runtimeapi.ContainerStats{}
	for _, rec := range all {
		if !statsMatches(rec, r.GetFilter()) {
			continue
		}
		st, err := s.containers.ListedStats(rec)
		if err != nil {
			continue
		}
		out = append(out, containerStats(rec, st))
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}

// statsMatches is ListContainerStats' filter.
func statsMatches(rec store.Container, f *runtimeapi.ContainerStatsFilter) bool {
	return f == nil || (f.Id == "" || strings.HasPrefix(rec.ID, f.Id)) &&
		(f.PodSandboxId == "" || strings.HasPrefix(rec.SandboxID, f.PodSandboxId)) &&
		labelsMatch(rec.Labels, f.LabelSelector)
}

func containerStats(rec store.Container, st containers.Stats) *runtimeapi.ContainerStats {
	at := st.At.UnixNano()
	u := func(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }
	return &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id: rec.ID, Metadata: &runtimeapi.ContainerMetadata{Name: rec.Name, Attempt: rec.Attempt},
			Labels: rec.Labels, Annotations: rec.Annotations,
		},
		Cpu:    cpuUsage(at, st.CPUNanos, st.NanoCores, st.HasRate),
		Memory: memoryUsage(at, st.CgroupUsage),
		Swap:   &runtimeapi.SwapUsage{Timestamp: at, SwapUsageBytes: u(st.Swap)},
		WritableLayer: &runtimeapi.FilesystemUsage{Timestamp: at, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: st.LayerRoot},
			UsedBytes: u(st.LayerBytes), InodesUsed: u(st.LayerInodes)},
	}
}

func cpuUsage(at int64, total, rate uint64, hasRate bool) *runtimeapi.CpuUsage {
	c := &runtimeapi.CpuUsage{Timestamp: at, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: total}}
	if hasRate {
		c.UsageNanoCores = &runtimeapi.UInt64Value{Value: rate}
	}
	return c
}

func memoryUsage(at int64, c linux.CgroupUsage) *runtimeapi.MemoryUsage {
	u := func(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }
	return &runtimeapi.MemoryUsage{Timestamp: at, WorkingSetBytes: u(c.WorkingSet), UsageBytes: u(c.Memory),
		RssBytes: u(c.RSS), PageFaults: u(c.PageFaults), MajorPageFaults: u(c.MajorFaults)}
}
