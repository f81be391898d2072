package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StartContainer starts a created container.
func (s *Server) StartContainer(ctx context.Context, r *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	if r.ContainerId == "" {
		return nil, invalid("StartContainer: container_id is required")
	}
	id, err := s.containerID(r.ContainerId)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.containers.Start(ctx, id); err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.StartContainerResponse{}, nil
}
