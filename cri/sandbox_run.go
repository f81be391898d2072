package cri

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/store"
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
		if req.UserNS, err = userNamespace(ns); err != nil {
			return nil, invalid("RunPodSandbox: " + err.Error())
		}
	} else {
		req.SharedPID = true // POD is the CRI's zero value
	}
	for _, pm := range c.GetPortMappings() {
		if pm.HostPort <= 0 {
			continue // only hostPorts need the network's help
		}
		req.PortMappings = append(req.PortMappings, cni.PortMapping{
			HostPort: pm.HostPort, ContainerPort: pm.ContainerPort, HostIP: pm.HostIp,
			Protocol: strings.ToLower(pm.Protocol.String()),
		})
	}
	if req.Bandwidth, err = bandwidth(c.Annotations); err != nil {
		return nil, invalid("RunPodSandbox: " + err.Error())
	}
	rec, err := s.containers.RunPod(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: rec.ID}, nil
}

// userNamespace reads the pod's user namespace: none given or NODE shares
// the node's (POD is the enum's zero value, so only a present
// usernsOptions can ask for it); POD gives the pod its own, with the one uid and one gid
// mapping kubelet sends, which must map the pod's root. A pod with its own
// user namespace shares no other namespace with the node: its root would
// hold the node's network or processes as an unprivileged user.
func userNamespace(ns *runtimeapi.NamespaceOption) (*sandbox.UserNS, error) {
	u := ns.GetUsernsOptions()
	if u == nil {
		return nil, nil
	}
	switch u.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		if len(u.GetUids())+len(u.GetGids()) > 0 {
			return nil, fmt.Errorf("usernsOptions: mode NODE takes no mappings")
		}
		return nil, nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return nil, fmt.Errorf("usernsOptions: mode %s is not supported (NODE or POD)", u.GetMode())
	}
	if ns.GetNetwork() == runtimeapi.NamespaceMode_NODE || ns.GetPid() == runtimeapi.NamespaceMode_NODE || ns.GetIpc() == runtimeapi.NamespaceMode_NODE {
		return nil, fmt.Errorf("usernsOptions: a pod with its own user namespace cannot use the node's network, PID or IPC namespace")
	}
	uids, err := idMapping("uids", u.GetUids())
	if err != nil {
		return nil, err
	}
	gids, err := idMapping("gids", u.GetGids())
	if err != nil {
		return nil, err
	}
	return &sandbox.UserNS{UIDs: uids, GIDs: gids}, nil
}

func idMapping(field string, in []*runtimeapi.IDMapping) ([]store.IDMap, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("usernsOptions.%s: want exactly one mapping, got %d", field, len(in))
	}
	m := in[0]
	switch {
	case m.ContainerId != 0:
		return nil, fmt.Errorf("usernsOptions.%s: the mapping must start at container ID 0 (the pod's root), not %d", field, m.ContainerId)
	case m.Length == 0:
		return nil, fmt.Errorf("usernsOptions.%s: the mapping is empty", field)
	case uint64(m.HostId)+uint64(m.Length) > math.MaxUint32:
		return nil, fmt.Errorf("usernsOptions.%s: host IDs %d+%d overflow", field, m.HostId, m.Length)
	}
	return []store.IDMap{{ContainerID: m.ContainerId, HostID: m.HostId, Size: m.Length}}, nil
}

// bandwidth reads kubelet's traffic shaping annotations (bits per second, as
// Kubernetes quantities: "10M", "1Gi"). Bursts are left unlimited, as
// containerd and CRI-O leave them.
func bandwidth(ann map[string]string) (*cni.Bandwidth, error) {
	var bw cni.Bandwidth
	for key, dst := range map[string]*uint64{
		"kubernetes.io/ingress-bandwidth": &bw.IngressRate,
		"kubernetes.io/egress-bandwidth":  &bw.EgressRate,
	} {
		v, ok := ann[key]
		if !ok {
			continue
		}
		n, err := quantity(v)
		if err != nil || n < 1000 {
			return nil, fmt.Errorf("annotation %s=%q: want a rate of at least 1k bits per second (e.g. 10M)", key, v)
		}
		*dst = n
	}
	if bw.IngressRate == 0 && bw.EgressRate == 0 {
		return nil, nil
	}
	if bw.IngressRate > 0 {
		bw.IngressBurst = math.MaxUint32
	}
	if bw.EgressRate > 0 {
		bw.EgressBurst = math.MaxUint32
	}
	return &bw, nil
}

// quantity parses the integer Kubernetes quantities bandwidth annotations use.
// (k8s.io/apimachinery's resource package does it all, but is a large
// dependency for six suffixes.)
func quantity(s string) (uint64, error) {
	mult := uint64(1)
	for _, suf := range []struct {
		s string
		m uint64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}} {
		if strings.HasSuffix(s, suf.s) {
			s, mult = strings.TrimSuffix(s, suf.s), suf.m
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > math.MaxUint64/mult {
		return 0, fmt.Errorf("bad quantity %q", s)
	}
	return n * mult, nil
}
