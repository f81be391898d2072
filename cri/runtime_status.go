package cri

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Status reports the runtime ready, and the network ready once a CNI network
// config and its plugins are there (kubelet starts no ordinary pod before).
func (s *Server) Status(ctx context.Context, r *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	network := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if err := s.sandboxes.NetworkReady(); err != nil {
		network.Status, network.Reason, network.Message = false, "NetworkPluginNotReady", err.Error()
	}
	resp := &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true}, network,
	}}, Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true}}
	for _, h := range s.containers.Handlers(ctx) {
		resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{
			Name: h.Name, Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: h.RecursiveReadOnly, UserNamespaces: h.UserNamespaces},
		})
	}
	if r.Verbose && s.statusInfo != nil {
		resp.Info = s.statusInfo(ctx)
	}
	return resp, nil
}

// UpdateRuntimeConfig takes kubelet's pod CIDR for the default network.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, r *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	if cidr := r.GetRuntimeConfig().GetNetworkConfig().GetPodCidr(); cidr != "" {
		// kubelet may send a dual-stack list; the default network takes the first range.
		first, _, _ := strings.Cut(cidr, ",")
		if err := s.sandboxes.SetPodCIDR(strings.TrimSpace(first)); err != nil {
			return nil, invalid("UpdateRuntimeConfig: " + err.Error())
		}
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}
