package cni

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// A pod network whose range another interface of the host holds too is
// unreachable from the host, silently: the host routes that range to the
// other interface ("no route to host"). Podman's package, installed after
// Berth, drops its bridge on 10.88.0.0/16 into /etc/cni/net.d while berth0
// keeps the range. So: the network is not ready while that lasts, with the
// interface named; Berth's own berth0, once idle, is removed when another
// network is in use; and the embedded default takes a free range when its
// own is held by another interface.

// overlapTTL bounds how often the host's addresses are read (Status and
// every RunPodSandbox ask).
const overlapTTL = time.Second

// hostAddr is an IPv4 address of an interface of the host that is up.
type hostAddr struct {
	iface string
	net   *net.IPNet
}

func hostAddrs() []hostAddr {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []hostAddr
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				out = append(out, hostAddr{i.Name, ipn})
			}
		}
	}
	return out
}

// overlapping is an address of an interface other than own inside subnet:
// its route is as or more specific than the network's, so it takes the
// pods' traffic. (A wider range around subnet is no harm: the network's own
// route is the more specific.)
func overlapping(subnet, own string, addrs []hostAddr) (hostAddr, bool) {
	_, sn, err := net.ParseCIDR(subnet)
	if err != nil {
		return hostAddr{}, false
	}
	for _, a := range addrs {
		if a.iface != own && sn.Contains(a.net.IP) {
			return a, true
		}
	}
	return hostAddr{}, false
}

// bridge is the bridge the network's first plugin makes, "" when it is no
// bridge plugin (a range of another kind is not checked).
func (n *Network) bridge() string {
	if len(n.list.Plugins) == 0 || n.list.Plugins[0].Network.Type != "bridge" {
		return ""
	}
	var conf struct{ Bridge string }
	if json.Unmarshal(n.list.Plugins[0].Bytes, &conf) != nil {
		return ""
	}
	return cmp.Or(conf.Bridge, "cni0") // the bridge plugin's own default
}

// checkOverlap says why pods of n would be unreachable from the host, if
// they would. Berth's own berth0 in the way, with no pod on it any more,
// is removed first.
func (m *Manager) checkOverlap(n *Network) error {
	own := n.bridge()
	subnet, _ := n.Range()
	if own == "" || subnet == "" {
		return nil
	}
	a, found := overlapping(subnet, own, hostAddrs())
	if found && a.iface == DefaultBridge && !m.cfg.LookOnly && idleBridge(DefaultBridge) {
		if out, err := exec.Command("ip", "link", "delete", DefaultBridge).CombinedOutput(); err != nil {
			m.log.Warn("remove the idle default bridge", slog.String("bridge", DefaultBridge), slog.Any("error", err), slog.String("output", strings.TrimSpace(string(out))))
		} else {
			m.log.Info("removed the idle default bridge: another network is in use on its range",
				slog.String("bridge", DefaultBridge), slog.String("range", a.net.String()), slog.String("network", n.Name()), slog.String("file", n.File))
		}
		a, found = overlapping(subnet, own, hostAddrs())
	}
	if !found {
		return nil
	}
	return fmt.Errorf("CNI network %q (%s) on %s overlaps interface %s (%s): the host would route the pods' addresses there and could not reach them; give one of them another range, or remove the interface",
		n.Name(), n.File, subnet, a.iface, a.net)
}

// idleBridge says whether bridge has no port (no pod's veth) left.
func idleBridge(bridge string) bool {
	ents, err := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif"))
	return err == nil && len(ents) == 0
}

// freeDefaultSubnet is want, or when another interface holds addresses in
// it, the first free /16 of 10.88-10.127 (10.89 is Docker's user networks').
func freeDefaultSubnet(want string, addrs []hostAddr) string {
	if _, taken := overlapping(want, DefaultBridge, addrs); !taken {
		return want
	}
	for b := 88; b < 128; b++ {
		cand := fmt.Sprintf("10.%d.0.0/16", b)
		if b == 89 || cand == want {
			continue
		}
		if _, taken := overlapping(cand, DefaultBridge, addrs); !taken {
			return cand
		}
	}
	return want
}
