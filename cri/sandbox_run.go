package cri

import (
	"context"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/sandbox"
)

// RunPodSandbox creates a pod sandbox and its namespaces.
func (s *Server) RunPodSandbox(ctx context.Context, r *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	c := r.GetConfig()
	m := c.GetMetadata()
	if m == nil || m.Name == "" || m.Uid == "" || m.Namespace == "" {
		return nil, invalid("RunPodSandbox: config.metadata needs name, uid and namespace")
	}
	raw, err := proto.Marshal(c)
	if err != nil {
		return nil, err
	}
	req := sandbox.Request{
		Name: m.Name, Namespace: m.Namespace, UID: m.Uid, Attempt: m.Attempt,
		Labels: c.Labels, Annotations: c.Annotations, Hostname: c.Hostname,
		LogDirectory: c.LogDirectory, RuntimeHandler: r.RuntimeHandler, Config: raw,
	}
	if d := c.GetDnsConfig(); d != nil {
		req.DNS = &sandbox.DNS{Servers: d.Servers, Searches: d.Searches, Options: d.Options}
	}
	if l := c.GetLinux(); l != nil {
		req.CgroupParent = l.CgroupParent
		req.Sysctls = l.Sysctls
		ns := l.GetSecurityContext().GetNamespaceOptions()
		req.HostNetwork = ns.GetNetwork() == runtimeapi.NamespaceMode_NODE
		req.HostIPC = ns.GetIpc() == runtimeapi.NamespaceMode_NODE
		req.SharedPID = ns.GetPid() == runtimeapi.NamespaceMode_POD
	} else {
		req.SharedPID = true // POD is the CRI's zero value
	}
	rec, err := s.containers.RunPod(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: rec.ID}, nil
}
