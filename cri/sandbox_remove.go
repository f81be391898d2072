package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// RemovePodSandbox removes the pod's containers, then the pod. Removing an
// unknown sandbox is not an error (CRI: idempotent).
func (s *Server) RemovePodSandbox(ctx context.Context, r *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	if r.PodSandboxId == "" {
		return nil, invalid("RemovePodSandbox: pod_sandbox_id is required")
	}
	id, err := s.sandboxID(r.PodSandboxId)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.containers.RemovePod(ctx, id); err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}
