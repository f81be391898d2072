package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpdateContainerResources changes a container's cgroup limits in place
// (kubelet's in-place pod resize).
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
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}
