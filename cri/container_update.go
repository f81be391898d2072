package cri

import (
	"cmp"
	"context"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/oci"
)

// UpdateContainerResources changes a container's cgroup limits in place
// (kubelet's in-place pod resize); the record's request takes the new
// resources, which ContainerStatus shows from then on.
func (s *Server) UpdateContainerResources(ctx context.Context, r *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	if r.ContainerId == "" || r.Linux == nil {
		return nil, invalid("UpdateContainerResources: container_id and linux are required")
	}
	id, err := s.containerID(r.ContainerId)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.containers.Update(ctx, id, resources(r.Linux)); err != nil {
		return nil, toStatus(err)
	}
	rec, err := s.containers.Get(id)
	if err != nil {
		return nil, toStatus(err)
	}
	var cfg runtimeapi.ContainerConfig
	if proto.Unmarshal(rec.Config, &cfg) == nil {
		if cfg.Linux == nil {
			cfg.Linux = &runtimeapi.LinuxContainerConfig{}
		}
		cfg.Linux.Resources = r.Linux
		if b, err := proto.Marshal(&cfg); err == nil {
			if err := s.containers.SetConfig(id, b); err != nil {
				return nil, toStatus(err)
			}
		}
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// UpdatePodSandboxResources resizes the pod's cgroup to its containers'
// resources and its overhead together.
func (s *Server) UpdatePodSandboxResources(ctx context.Context, r *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	if r.PodSandboxId == "" {
		return nil, invalid("UpdatePodSandboxResources: pod_sandbox_id is required")
	}
	id, err := s.sandboxID(r.PodSandboxId)
	if err != nil {
		return nil, toStatus(err)
	}
	if r.Resources == nil && r.Overhead == nil {
		return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
	}
	if err := s.containers.UpdatePod(ctx, id, podResources(r.Resources, r.Overhead)); err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}

// podResources adds a pod's overhead to its containers' sum. A limit the
// sum does not set (0, or -1 for CPU quota) stays unset: the pod is
// unlimited there.
func podResources(sum, overhead *runtimeapi.LinuxContainerResources) oci.Resources {
	if sum == nil {
		sum = &runtimeapi.LinuxContainerResources{}
	}
	if overhead == nil {
		overhead = &runtimeapi.LinuxContainerResources{}
	}
	r := resources(sum)
	if r.CPUQuota > 0 && overhead.CpuQuota > 0 {
		period := func(p int64) int64 { return cmp.Or(p, 100000) } // the kernel's default period
		r.CPUQuota += overhead.CpuQuota * period(r.CPUPeriod) / period(overhead.CpuPeriod)
	}
	if r.CPUShares > 0 {
		r.CPUShares += overhead.CpuShares
	}
	if r.MemoryLimit > 0 {
		r.MemoryLimit += overhead.MemoryLimitInBytes
	}
	return r
}
