package cni

import (
	"encoding/json"
	"fmt"
)

// The embedded default network: what `make run` gives pods with no set-up,
// and what deploy/cni/10-berth.conflist ships for operators.
const (
	DefaultNetwork = "berth"
	DefaultBridge  = "berth0"
	DefaultSubnet  = "10.88.0.0/16"
	DefaultFile    = "10-berth.conflist"
)

// DefaultConflist is the default network on subnet: a bridge with host-local
// addresses, the host as gateway with masquerading, hostPorts (portmap),
// forwarding opened for pod addresses (firewall) and traffic shaping
// (bandwidth).
func DefaultConflist(subnet string) []byte {
	return BridgeConflist(DefaultNetwork, DefaultBridge, subnet, false)
}

// BridgeConflist is a network like the default one, named name, on its own
// bridge and subnet (Docker's user-defined bridge networks). An internal
// network has no route out and no masquerading.
func BridgeConflist(name, bridge, subnet string, internal bool) []byte {
	routes := `,
        "routes": [{"dst": "0.0.0.0/0"}]`
	if internal {
		routes = ""
	}
	return []byte(fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": %t,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]]%s
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"},
    {"type": "bandwidth", "capabilities": {"bandwidth": true}}
  ]
}
`, name, bridge, !internal, subnet, routes))
}

// WithoutDefaultRoute is conflist with no route in its plugins' IPAM: for a
// pod's second and later networks, whose default route stays on the first.
func WithoutDefaultRoute(conflist []byte) ([]byte, error) {
	var list map[string]any
	if err := json.Unmarshal(conflist, &list); err != nil {
		return nil, fmt.Errorf("network config: %w", err)
	}
	plugins, _ := list["plugins"].([]any)
	for _, p := range plugins {
		if pm, ok := p.(map[string]any); ok {
			if ipam, ok := pm["ipam"].(map[string]any); ok {
				delete(ipam, "routes")
			}
		}
	}
	return json.MarshalIndent(list, "", "  ")
}
