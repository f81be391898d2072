// Package cni connects pods to the network through CNI plugins, as kubelet's
// runtimes do: a thin layer over containernetworking/cni's libcni, which runs
// the plugins. It loads the first network config of a directory by name
// (reloading it when the directory changes), or an embedded default bridge
// network when there is none, and turns pods into CNI runtime configs and
// plugin results into pod IPs.
//
// cni knows pods only as IDs, names and a network namespace path; it imports
// nothing of Berth's.
package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// Pod is what the plugins are told about a pod.
type Pod struct {
	ID, Name, Namespace, UID string
	// NetNS is the path of the pod's network namespace; "" when it is gone.
	NetNS string
	// IfName is the pod's interface on this network: "" is IfName (eth0);
	// a pod attached to more networks has eth1, eth2, ...
	IfName       string        `json:",omitempty"`
	PortMappings []PortMapping `json:",omitempty"`
	Bandwidth    *Bandwidth    `json:",omitempty"`
	DNS          *DNS          `json:",omitempty"`
}

// PortMapping is a hostPort (the portMappings capability).
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Bandwidth limits a pod's traffic, bits per second (the bandwidth capability).
type Bandwidth struct {
	IngressRate  uint64 `json:"ingressRate,omitempty"`
	IngressBurst uint64 `json:"ingressBurst,omitempty"`
	EgressRate   uint64 `json:"egressRate,omitempty"`
	EgressBurst  uint64 `json:"egressBurst,omitempty"`
}

// DNS is the pod's resolver configuration (the dns capability).
type DNS struct {
	Servers  []string `json:"servers,omitempty"`
	Searches []string `json:"searches,omitempty"`
	Options  []string `json:"options,omitempty"`
}

// runtimeConf is the pod as libcni takes it: the CNI_ARGS kubelet's runtimes
// pass, and the capabilities only plugins that declare them receive.
func runtimeConf(p Pod) *libcni.RuntimeConf {
	caps := map[string]any{}
	if len(p.PortMappings) > 0 {
		caps["portMappings"] = p.PortMappings
	}
	if p.Bandwidth != nil {
		caps["bandwidth"] = p.Bandwidth
	}
	if p.DNS != nil {
		caps["dns"] = p.DNS
	}
	ifName := IfName
	if p.IfName != "" {
		ifName = p.IfName
	}
	return &libcni.RuntimeConf{
		ContainerID: p.ID,
		NetNS:       p.NetNS,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", p.Namespace},
			{"K8S_POD_NAME", p.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.ID},
			{"K8S_POD_UID", p.UID},
		},
		CapabilityArgs: caps,
	}
}

// Add attaches the pod to n and returns its IPs, IPv4 first.
func (m *Manager) Add(ctx context.Context, n *Network, p Pod) ([]string, error) {
	res, err := m.cni.AddNetworkList(ctx, n.list, runtimeConf(p))
	if err != nil {
		return nil, fmt.Errorf("CNI network %q (%s) ADD for pod %s: %w", n.Name(), n.File, p.ID, err)
	}
	ips, err := podIPs(res)
	if err != nil {
		return nil, fmt.Errorf("CNI network %q (%s) ADD for pod %s: %w", n.Name(), n.File, p.ID, err)
	}
	return ips, nil
}

// Del detaches the pod from n. It is idempotent: a second DEL, or one after
// the namespace is gone, succeeds, as the CNI spec asks of plugins. What an
// ADD or DEL cut short left, which the plugins cannot find again, it
// removes itself (leftovers.go).
func (m *Manager) Del(ctx context.Context, n *Network, p Pod) error {
	rt := runtimeConf(p)
	list, ips, cached := m.delPlan(n, p, rt)
	cutShort := m.markDel(p, rt.IfName)
	err := m.cni.DelNetworkList(ctx, list, rt)
	if chain, ok := missingMasqChain(err); ok && !natChainExists(ctx, chain) {
		// The bridge plugin of containernetworking-plugins 1.1 (Debian 12's)
		// fails DEL when its masquerade chain is missing — an ADD cut short
		// before making it — because iptables' nf_tables backend words the
		// error in a way the plugin does not recognise as "not found". It
		// is the last step of its DEL, and with the chain gone (checked) so
		// is any rule jumping to it: DEL again without masquerading finishes.
		if noMasq, lerr := withoutIPMasq(list); lerr == nil {
			err = m.cni.DelNetworkList(ctx, noMasq, rt)
		}
	}
	if err != nil {
		return fmt.Errorf("CNI network %q (%s) DEL for pod %s: %w", n.Name(), n.File, p.ID, err)
	}
	if cutShort || !cached {
		if err := removeLeftovers(ctx, n.Name(), p.ID, ips, leasedNow(n)); err != nil {
			m.log.Warn("CNI DEL", slog.String("sandbox", p.ID), slog.Any("error", err))
		}
	}
	m.unmarkDel(p, rt.IfName)
	return nil
}

// missingMasqChain finds, in a DEL's error, the bridge plugin's failure on
// a missing masquerade chain, and names the chain.
func missingMasqChain(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	m := masqChainMissing.FindStringSubmatch(err.Error())
	if m == nil {
		return "", false
	}
	return m[1], true
}

// natChainExists asks iptables whether the nat table has chain.
func natChainExists(ctx context.Context, chain string) bool {
	return exec.CommandContext(ctx, "iptables", "-w", "-t", "nat", "-S", chain).Run() == nil
}

// withoutIPMasq is list with ipMasq off in every plugin that sets it.
func withoutIPMasq(list *libcni.NetworkConfigList) (*libcni.NetworkConfigList, error) {
	cp := *list
	cp.Plugins = slices.Clone(list.Plugins)
	for i, pc := range cp.Plugins {
		var c struct {
			IPMasq bool `json:"ipMasq"`
		}
		if json.Unmarshal(pc.Bytes, &c) != nil || !c.IPMasq {
			continue
		}
		off, err := libcni.InjectConf(pc, map[string]interface{}{"ipMasq": false})
		if err != nil {
			return nil, err
		}
		cp.Plugins[i] = off
	}
	return &cp, nil
}

// Check asks the plugins whether the pod's networking is as ADD left it.
func (m *Manager) Check(ctx context.Context, n *Network, p Pod) error {
	list := n.list
	if p.Bandwidth == nil {
		// The bandwidth plugin of containernetworking-plugins 1.1 (Debian 12's)
		// dereferences a nil limit in CHECK of a pod that has none; such a pod
		// has nothing for it to check anyway.
		cp := *list
		cp.Plugins = slices.DeleteFunc(slices.Clone(list.Plugins), func(pc *libcni.PluginConfig) bool {
			return pc.Network.Type == "bandwidth"
		})
		list = &cp
	}
	if err := m.cni.CheckNetworkList(ctx, list, runtimeConf(p)); err != nil {
		return fmt.Errorf("CNI network %q CHECK for pod %s: %w", n.Name(), p.ID, err)
	}
	return nil
}

// podIPs lists the addresses a result gives the pod's interface (or, when the
// result names no interface, all of them), IPv4 before IPv6.
func podIPs(r types.Result) ([]string, error) {
	cur, err := types100.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("CNI result: %w", err)
	}
	var v4, v6 []string
	for _, ipc := range cur.IPs {
		if ipc.Interface != nil {
			i := *ipc.Interface
			if i < 0 || i >= len(cur.Interfaces) || cur.Interfaces[i].Sandbox == "" {
				continue // an address of the host's side
			}
		}
		if ipc.Address.IP.To4() != nil {
			v4 = append(v4, ipc.Address.IP.String())
		} else {
			v6 = append(v6, ipc.Address.IP.String())
		}
	}
	ips := append(v4, v6...)
	if len(ips) == 0 {
		return nil, errors.New("the plugins gave the pod no IP address")
	}
	return ips, nil
}
