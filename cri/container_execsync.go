package cri

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ExecSync runs a command in a running container and returns its output and
// exit code. A command still running at the timeout is killed and the call
// answers DeadlineExceeded, which kubelet counts as a probe timeout.
func (s *Server) ExecSync(ctx context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if r.ContainerId == "" || len(r.Cmd) == 0 {
		return nil, invalid("ExecSync: container_id and cmd are required")
	}
	id, err := s.containerID(r.ContainerId)
	if err != nil {
		return nil, toStatus(err)
	}
	timeout := time.Duration(r.Timeout) * time.Second
	res, err := s.containers.ExecSync(ctx, id, r.Cmd, timeout)
	if err != nil {
		return nil, toStatus(err)
	}
	if res.TimedOut {
		return nil, status.Errorf(codes.DeadlineExceeded, "ExecSync: command %q timed out after %v", r.Cmd, timeout)
	}
	return &runtimeapi.ExecSyncResponse{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}, nil
}
