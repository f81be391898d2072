package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// StopPodSandbox stops the pod's containers and releases its namespaces.
// The CRI contract makes it idempotent: an unknown sandbox is not an error.
func (s *Server) StopPodSandbox(ctx context.Context, r *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	if r.PodSandboxId == "" {
		return nil, invalid("StopPodSandbox: pod_sandbox_id is required")
	}
	id, err := s.sandboxID(r.PodSandboxId)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.containers.StopPod(ctx, id); err != nil && !errdefs.IsNotFound(err) {
		return nil, toStatus(err)
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}
