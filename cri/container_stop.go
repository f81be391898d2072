package cri

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// StopContainer sends the stop signal, then SIGKILL after the timeout.
// Stopping an unknown or stopped container is not an error: the CRI makes
// Stop idempotent, and kubelet retries it.
func (s *Server) StopContainer(ctx context.Context, r *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	if r.ContainerId == "" {
		return nil, invalid("StopContainer: container_id is required")
	}
	id, err := s.containerID(r.ContainerId)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.containers.Stop(ctx, id, time.Duration(r.Timeout)*time.Second); err != nil && !errdefs.IsNotFound(err) {
		return nil, toStatus(err)
	}
	return &runtimeapi.StopContainerResponse{}, nil
}
