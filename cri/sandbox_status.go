package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/store"
)

// PodSandboxStatus reports a sandbox.
func (s *Server) PodSandboxStatus(ctx context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	if r.PodSandboxId == "" {
		return nil, invalid("PodSandboxStatus: pod_sandbox_id is required")
	}
	id, err := s.sandboxID(r.PodSandboxId)
	if err != nil {
		return nil, toStatus(err)
	}
	rec, err := s.sandboxes.Get(id)
	if err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: sandboxStatus(rec)}, nil
}

func sandboxStatus(rec store.Sandbox) *runtimeapi.PodSandboxStatus {
	return &runtimeapi.PodSandboxStatus{
		Id:          rec.ID,
		Metadata:    sandboxMetadata(rec),
		State:       sandboxState(rec),
		CreatedAt:   rec.CreatedAt.UnixNano(),
		Network:     &runtimeapi.PodSandboxNetworkStatus{Ip: rec.IP, AdditionalIps: additionalIPs(rec.AdditionalIPs)},
		Labels:      rec.Labels,
		Annotations: rec.Annotations,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
			Network: nsMode(rec.Namespaces["net"]), Ipc: nsMode(rec.Namespaces["ipc"]), Pid: pidMode(rec),
			UsernsOptions: usernsOptions(rec),
		}}},
		RuntimeHandler: rec.RuntimeHandler,
	}
}

func pidMode(rec store.Sandbox) runtimeapi.NamespaceMode {
	if rec.Namespaces["pid"] != "" {
		return runtimeapi.NamespaceMode_POD
	}
	return runtimeapi.NamespaceMode_CONTAINER
}

func usernsOptions(rec store.Sandbox) *runtimeapi.UserNamespace {
	if rec.Namespaces["user"] == "" {
		return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	}
	conv := func(in []store.IDMap) []*runtimeapi.IDMapping {
		out := make([]*runtimeapi.IDMapping, len(in))
		for i, m := range in {
			out[i] = &runtimeapi.IDMapping{ContainerId: m.ContainerID, HostId: m.HostID, Length: m.Size}
		}
		return out
	}
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: conv(rec.UIDMappings), Gids: conv(rec.GIDMappings)}
}

func nsMode(path string) runtimeapi.NamespaceMode {
	if path == "" {
		return runtimeapi.NamespaceMode_NODE
	}
	return runtimeapi.NamespaceMode_POD
}

func sandboxMetadata(rec store.Sandbox) *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{Name: rec.Name, Uid: rec.UID, Namespace: rec.Namespace, Attempt: rec.Attempt}
}

func sandboxState(rec store.Sandbox) runtimeapi.PodSandboxState {
	if rec.State == store.SandboxReady {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func additionalIPs(ips []string) []*runtimeapi.PodIP {
	var out []*runtimeapi.PodIP
	for _, ip := range ips {
		out = append(out, &runtimeapi.PodIP{Ip: ip})
	}
	return out
}
