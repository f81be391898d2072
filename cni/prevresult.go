package cni

import (
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// defaultLeaseDir is where host-local keeps its leases, one directory a network.
const defaultLeaseDir = "/var/lib/cni/networks"

// delPlan is what a DEL of p on n runs with: n's list, with a previous
// result put in each plugin's config when libcni has cached none — an ADD
// cut short after the plugins ran but before libcni wrote its cache
// (berthd killed) leaves DEL no result, and the firewall plugin, which
// finds the pod's rules by its IP, would leave them. The IPs are
// host-local's leases for the pod, which it writes as it hands them out;
// other IPAM plugins keep no lease Berth can read, and their pods' DEL goes
// on without one. ips are the pod's addresses, for removeLeftovers.
func (m *Manager) delPlan(n *Network, p Pod, rt *libcni.RuntimeConf) (list *libcni.NetworkConfigList, ips []string, cached bool) {
	if res, err := m.cni.GetNetworkListCachedResult(n.list, rt); err == nil && res != nil {
		ips, _ = podIPs(res)
		return n.list, ips, true
	}
	leases := leasedIPs(n, p.ID, rt.IfName)
	if len(leases) == 0 {
		return n.list, nil, false
	}
	var addrs []map[string]string
	for _, a := range leases {
		addrs = append(addrs, map[string]string{"address": a.String()})
		ips = append(ips, a.IP.String())
	}
	prev := map[string]any{"cniVersion": n.list.CNIVersion, "ips": addrs}
	cp := *n.list
	cp.Plugins = make([]*libcni.PluginConfig, len(n.list.Plugins))
	for i, pc := range n.list.Plugins {
		with, err := libcni.InjectConf(pc, map[string]any{"prevResult": prev})
		if err != nil {
			return n.list, ips, false
		}
		cp.Plugins[i] = with
	}
	m.log.Info("CNI DEL without a cached result: the pod's IPs are host-local's leases",
		slog.String("sandbox", p.ID), slog.String("network", n.Name()), slog.Any("ips", ips))
	return &cp, ips, false
}

// leaseDir is where host-local keeps n's leases, with the subnets it hands
// out; "" when n's IPAM is not host-local.
func leaseDir(n *Network) (string, []*net.IPNet) {
	for _, pc := range n.list.Plugins {
		var c struct {
			IPAM struct {
				Type    string `json:"type"`
				DataDir string `json:"dataDir"`
				Ranges  [][]struct {
					Subnet string `json:"subnet"`
				} `json:"ranges"`
				Subnet string `json:"subnet"`
			} `json:"ipam"`
		}
		if json.Unmarshal(pc.Bytes, &c) != nil || c.IPAM.Type != "host-local" {
			continue
		}
		var subnets []*net.IPNet
		for _, set := range c.IPAM.Ranges {
			for _, r := range set {
				if _, s, err := net.ParseCIDR(r.Subnet); err == nil {
					subnets = append(subnets, s)
				}
			}
		}
		if _, s, err := net.ParseCIDR(c.IPAM.Subnet); err == nil {
			subnets = append(subnets, s)
		}
		dir := c.IPAM.DataDir
		if dir == "" {
			dir = defaultLeaseDir
		}
		return filepath.Join(dir, n.Name()), subnets
	}
	return "", nil
}

// leasedIPs are the addresses (with their subnet's mask) host-local leased
// to the pod's interface on n.
func leasedIPs(n *Network, podID, ifName string) []*net.IPNet {
	dir, subnets := leaseDir(n)
	if dir == "" {
		return nil
	}
	var out []*net.IPNet
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		ip := net.ParseIP(e.Name())
		if ip == nil {
			continue
		}
		// host-local writes "ID\r\nIFNAME" in the lease file named by the IP.
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		id, ifn, _ := strings.Cut(string(b), "\r\n")
		if strings.TrimSpace(id) != podID || (ifn != "" && strings.TrimSpace(ifn) != ifName) {
			continue
		}
		bits := 8 * len(ip.To16())
		if ip4 := ip.To4(); ip4 != nil {
			ip, bits = ip4, 32
		}
		addr := &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}
		for _, s := range subnets {
			if s.Contains(ip) {
				addr.Mask = s.Mask
			}
		}
		out = append(out, addr)
	}
	return out
}

// leasedNow reports, for an IP, whether host-local has it leased on n to
// any pod (n's config read once, for every IP asked).
func leasedNow(n *Network) func(ip string) bool {
	dir, _ := leaseDir(n)
	return func(ip string) bool {
		if dir == "" {
			return true // not host-local: cannot tell, so never take the IP's rules
		}
		_, err := os.Stat(filepath.Join(dir, ip))
		return err == nil
	}
}
