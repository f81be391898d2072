package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ReopenContainerLog asks the container's shim to reopen its log file:
// kubelet calls it after renaming the file to rotate it.
func (s *Server) ReopenContainerLog(ctx context.Context, r *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	if r.ContainerId == "" {
		return nil, invalid("ReopenContainerLog: container_id is required")
	}
	id, err := s.containerID(r.ContainerId)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.containers.ReopenLog(ctx, id); err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
