package cni

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// newTestManager has a config dir and a plugin dir of the test's; the plugin
// "binaries" are empty executables: loading only looks for them (the e2e
// tests run the real plugins).
func newTestManager(t *testing.T, plugins ...string) (*Manager, Config) {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{
		ConfDir: filepath.Join(dir, "net.d"), BinDirs: []string{filepath.Join(dir, "bin1"), filepath.Join(dir, "bin2")},
		CacheDir: filepath.Join(dir, "cache"), DefaultDir: filepath.Join(dir, "default"), DefaultSubnet: DefaultSubnet,
	}
	for _, d := range append([]string{cfg.ConfDir}, cfg.BinDirs...) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range plugins {
		if err := os.WriteFile(filepath.Join(cfg.BinDirs[1], p), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))), cfg
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// A later write in the same test must change the fingerprint even on coarse clocks.
	future := time.Now().Add(time.Duration(len(content)) * time.Second)
	_ = os.Chtimes(path, future, future)
}

func TestDefaultNetworkWhenNoConfig(t *testing.T) {
	m, cfg := newTestManager(t, "bridge", "host-local", "portmap", "firewall", "bandwidth")
	n, err := m.Current()
	if err != nil {
		t.Fatal(err)
	}
	if n.Name() != DefaultNetwork || n.File != filepath.Join(cfg.DefaultDir, DefaultFile) {
		t.Fatalf("default network %q from %s", n.Name(), n.File)
	}
	if !strings.Contains(string(n.Bytes()), `"subnet": "10.88.0.0/16"`) {
		t.Fatalf("default subnet missing:\n%s", n.Bytes())
	}
	// Kubelet's pod CIDR replaces the default range.
	if err := m.SetDefaultSubnet("10.244.3.0/24"); err != nil {
		t.Fatal(err)
	}
	n, err = m.Current()
	if err != nil || !strings.Contains(string(n.Bytes()), `"subnet": "10.244.3.0/24"`) {
		t.Fatalf("after SetDefaultSubnet: %v\n%s", err, n.Bytes())
	}
	if err := m.SetDefaultSubnet("not-a-cidr"); err == nil {
		t.Fatal("a bad pod CIDR was taken")
	}
}

// The file operators get is the one berthd writes.
func TestDeployedConflistIsTheDefault(t *testing.T) {
	b, err := os.ReadFile("../deploy/cni/" + DefaultFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(DefaultConflist(DefaultSubnet)) {
		t.Fatalf("deploy/cni/%s differs from DefaultConflist(%s)", DefaultFile, DefaultSubnet)
	}
}

func TestLoadFirstByNameAndReload(t *testing.T) {
	m, cfg := newTestManager(t, "bridge", "host-local", "ptp")
	write(t, filepath.Join(cfg.ConfDir, "20-b.conflist"), `{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"ptp"}]}`)
	write(t, filepath.Join(cfg.ConfDir, "10-a.conf"), `{"cniVersion":"1.0.0","name":"a","type":"bridge","ipam":{"type":"host-local"}}`)
	n, err := m.Current()
	if err != nil || n.Name() != "a" {
		t.Fatalf("first by name: %v %v", n, err)
	}
	// A single-plugin .conf becomes a list of one.
	if len(n.list.Plugins) != 1 || n.list.Plugins[0].Network.Type != "bridge" {
		t.Fatalf("plugins of a .conf: %+v", n.list.Plugins)
	}
	// The directory changes: the next call sees it, no restart.
	os.Remove(filepath.Join(cfg.ConfDir, "10-a.conf"))
	if n, err = m.Current(); err != nil || n.Name() != "b" {
		t.Fatalf("after removing 10-a.conf: %v %v", n, err)
	}
	// A network kept with a pod comes back whole.
	kept, err := FromBytes(n.Bytes())
	if err != nil || kept.Name() != "b" {
		t.Fatalf("FromBytes: %v %v", kept, err)
	}
}

func TestLoadErrorsNameFileAndPlugin(t *testing.T) {
	m, cfg := newTestManager(t, "bridge")
	missing := filepath.Join(cfg.ConfDir, "10-net.conflist")
	write(t, missing, `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"nosuch"}]}`)
	_, err := m.Current()
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), `plugin "nosuch" not found in `+strings.Join(cfg.BinDirs, ":")) {
		t.Fatalf("missing plugin: %v", err)
	}
	for _, c := range []struct{ content, want string }{
		{`{"cniVersion":"1.0.0","name":`, "unexpected end of JSON"},
		{`{"cniVersion":"1.0.0","name":"n","plugins":[]}`, "no plugins"},
		{`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../../bin/sh"}]}`, "is not a plugin name"},
	} {
		write(t, missing, c.content)
		if _, err := m.Current(); err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v, want %q", c.content, err, c.want)
		}
	}
}

func TestRuntimeConfArgsAndCapabilities(t *testing.T) {
	rt := runtimeConf(Pod{ID: "abc", Name: "web", Namespace: "ns", UID: "u", NetNS: "/run/x/ns/net"})
	want := [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "ns"}, {"K8S_POD_NAME", "web"}, {"K8S_POD_INFRA_CONTAINER_ID", "abc"}, {"K8S_POD_UID", "u"}}
	if !reflect.DeepEqual(rt.Args, want) || rt.IfName != "eth0" || rt.ContainerID != "abc" || rt.NetNS != "/run/x/ns/net" {
		t.Fatalf("runtime conf: %+v", rt)
	}
	if len(rt.CapabilityArgs) != 0 {
		t.Fatalf("capabilities with nothing asked: %v", rt.CapabilityArgs)
	}
	rt = runtimeConf(Pod{ID: "abc", PortMappings: []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		Bandwidth: &Bandwidth{IngressRate: 1e6}, DNS: &DNS{Servers: []string{"10.96.0.10"}}})
	for _, k := range []string{"portMappings", "bandwidth", "dns"} {
		if rt.CapabilityArgs[k] == nil {
			t.Fatalf("capability %s missing: %v", k, rt.CapabilityArgs)
		}
	}
}

func TestPodIPsFromResult(t *testing.T) {
	host, pod := 0, 1
	res := &types100.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*types100.Interface{{Name: "berth0"}, {Name: "eth0", Sandbox: "/run/x/ns/net"}},
		IPs: []*types100.IPConfig{
			{Interface: &host, Address: net.IPNet{IP: net.ParseIP("10.88.0.1"), Mask: net.CIDRMask(16, 32)}},
			{Interface: &pod, Address: net.IPNet{IP: net.ParseIP("fd00::5"), Mask: net.CIDRMask(64, 128)}},
			{Interface: &pod, Address: net.IPNet{IP: net.ParseIP("10.88.0.5"), Mask: net.CIDRMask(16, 32)}},
		},
	}
	ips, err := podIPs(res)
	if err != nil || !reflect.DeepEqual(ips, []string{"10.88.0.5", "fd00::5"}) {
		t.Fatalf("pod IPs: %v %v", ips, err)
	}
	if _, err := podIPs(&types100.Result{CNIVersion: "1.0.0"}); err == nil {
		t.Fatal("a result without addresses was taken")
	}
}

// TestWithoutIPMasq: the DEL retry turns masquerading off in the plugins
// that have it and leaves the rest as they are.
func TestWithoutIPMasq(t *testing.T) {
	list, err := libcni.ConfListFromBytes(DefaultConflist(DefaultSubnet))
	if err != nil {
		t.Fatal(err)
	}
	off, err := withoutIPMasq(list)
	if err != nil {
		t.Fatal(err)
	}
	for i, pc := range off.Plugins {
		var c map[string]any
		if err := json.Unmarshal(pc.Bytes, &c); err != nil {
			t.Fatal(err)
		}
		if c["ipMasq"] == true {
			t.Errorf("plugin %s still masquerades", pc.Network.Type)
		}
		if pc.Network.Type != "bridge" && string(pc.Bytes) != string(list.Plugins[i].Bytes) {
			t.Errorf("plugin %s changed", pc.Network.Type)
		}
	}
	if !strings.Contains(string(list.Plugins[0].Bytes), `"ipMasq":true`) && !strings.Contains(string(list.Plugins[0].Bytes), `"ipMasq": true`) {
		t.Errorf("the original list was changed: %s", list.Plugins[0].Bytes)
	}
}

// TestMissingMasqChain: only the bridge plugin's failure on its own
// masquerade chain leads to the retry without masquerading.
func TestMissingMasqChain(t *testing.T) {
	for msg, want := range map[string]string{
		`plugin type="bridge" failed (delete): running [/usr/sbin/iptables -t nat -D POSTROUTING -s 10.88.0.5 -j CNI-aa1eb2be60ed21e3b7e5c268 --wait]: exit status 2: iptables v1.8.9 (nf_tables): Chain 'CNI-aa1eb2be60ed21e3b7e5c268' does not exist`: "CNI-aa1eb2be60ed21e3b7e5c268",
		`plugin type="portmap" failed (delete): Chain 'CNI-DN-1234' does not exist`: "",
		`plugin type="bridge" failed (delete): some other error`:                    "",
	} {
		got, ok := missingMasqChain(errors.New(msg))
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", msg, got, ok, want)
		}
	}
	if _, ok := missingMasqChain(nil); ok {
		t.Error("nil error")
	}
}

func TestNetworkRange(t *testing.T) {
	for _, c := range []struct{ conf, subnet, gateway string }{
		{string(DefaultConflist(DefaultSubnet)), "10.88.0.0/16", "10.88.0.1"},
		{`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"fd00::/64"}],[{"subnet":"10.1.2.0/24","gateway":"10.1.2.254"}]]}}]}`, "10.1.2.0/24", "10.1.2.254"},
		{`{"cniVersion":"0.4.0","name":"old","plugins":[{"type":"bridge","ipam":{"type":"host-local","subnet":"10.5.0.0/16"}}]}`, "10.5.0.0/16", "10.5.0.1"},
		{`{"cniVersion":"1.0.0","name":"dhcp","plugins":[{"type":"macvlan","ipam":{"type":"dhcp"}}]}`, "", ""},
	} {
		n, err := FromBytes([]byte(c.conf))
		if err != nil {
			t.Fatal(err)
		}
		if s, g := n.Range(); s != c.subnet || g != c.gateway {
			t.Errorf("%s: Range() = %q %q, want %q %q", n.Name(), s, g, c.subnet, c.gateway)
		}
	}
}

// An address of another interface inside the pod network's range is an
// overlap (its route takes the pods' traffic); a wider range around it is
// not; the network's own bridge is not. The default network moves to a
// free /16 when its own is taken.
func TestOverlap(t *testing.T) {
	addr := func(iface, cidr string) hostAddr {
		ip, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return hostAddr{iface, n}
	}
	addrs := []hostAddr{addr("berth0", "10.88.0.1/16"), addr("eth0", "10.0.0.5/8"), addr("lo", "127.0.0.1/8")}
	if a, found := overlapping("10.88.0.0/16", "berth0", addrs); found {
		t.Errorf("berth0 on its own network, eth0 on a wider range: overlap %v", a)
	}
	if a, found := overlapping("10.88.0.0/16", "cni-podman0", addrs); !found || a.iface != "berth0" {
		t.Errorf("podman's bridge on berth0's range: %v %t", a, found)
	}
	if got := freeDefaultSubnet("10.88.0.0/16", addrs); got != "10.88.0.0/16" {
		t.Errorf("the default with only berth0 on it: %s", got)
	}
	taken := append(addrs, addr("podman0", "10.88.0.1/16"), addr("other", "10.90.3.1/24"))
	if got := freeDefaultSubnet("10.88.0.0/16", taken); got != "10.91.0.0/16" {
		t.Errorf("the default with 10.88 and 10.90 taken: %s, want 10.91.0.0/16 (10.89 is Docker's networks')", got)
	}
	n, err := FromBytes(DefaultConflist(DefaultSubnet))
	if err != nil {
		t.Fatal(err)
	}
	if b := n.bridge(); b != DefaultBridge {
		t.Errorf("the default network's bridge: %q", b)
	}
}

// TestPrevResultFromLeases: with no cached result, DEL's plugins are given
// one made of host-local's leases for the pod's interface (its subnet's
// mask), and none for another pod's or another interface's; with a cached
// result, or no lease, the list is left as it is.
func TestPrevResultFromLeases(t *testing.T) {
	m, _ := newTestManager(t, "bridge", "firewall", "host-local")
	leases := t.TempDir()
	conf := `{"cniVersion":"1.0.0","name":"leasenet","plugins":[
	  {"type":"bridge","ipam":{"type":"host-local","dataDir":"` + leases + `","ranges":[[{"subnet":"10.99.0.0/16"}]]}},
	  {"type":"firewall"}]}`
	list, err := libcni.NetworkConfFromBytes([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	n := &Network{list: list}
	os.MkdirAll(filepath.Join(leases, "leasenet"), 0o755)
	for ip, owner := range map[string]string{"10.99.0.7": "pod1\r\neth0", "10.99.0.8": "pod2\r\neth0", "10.99.0.9": "pod1\r\neth1", "last_reserved_ip.0": "10.99.0.9"} {
		os.WriteFile(filepath.Join(leases, "leasenet", ip), []byte(owner), 0o644)
	}
	p := Pod{ID: "pod1", Name: "a", Namespace: "ns", UID: "u"}
	got, ips, cached := m.delPlan(n, p, runtimeConf(p))
	if cached || len(ips) != 1 || ips[0] != "10.99.0.7" {
		t.Errorf("delPlan: ips %v, cached %v", ips, cached)
	}
	if got == n.list {
		t.Fatal("no previous result was made from the pod's lease")
	}
	for _, pc := range got.Plugins {
		var c struct {
			PrevResult struct {
				IPs []struct{ Address string } `json:"ips"`
			} `json:"prevResult"`
		}
		if err := json.Unmarshal(pc.Bytes, &c); err != nil {
			t.Fatal(err)
		}
		if len(c.PrevResult.IPs) != 1 || c.PrevResult.IPs[0].Address != "10.99.0.7/16" {
			t.Errorf("%s's prevResult: %+v, want 10.99.0.7/16 alone", pc.Network.Type, c.PrevResult)
		}
	}
	if other := (Pod{ID: "pod3"}); func() bool { l, _, _ := m.delPlan(n, other, runtimeConf(other)); return l != n.list }() {
		t.Error("a pod without a lease got a previous result")
	}
}

func TestSplitRule(t *testing.T) {
	got := splitRule(`-A POSTROUTING -s 10.88.0.5/32 -m comment --comment "name: \"berth\" id: \"abc\"" -j CNI-57f6`)
	want := []string{"-A", "POSTROUTING", "-s", "10.88.0.5/32", "-m", "comment", "--comment", `name: "berth" id: "abc"`, "-j", "CNI-57f6"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splitRule: %q", got)
	}
}

// TestMasqChain: the bridge plugin's name for a pod's masquerade chain (seen
// on this machine: network "berth", the pod's ID).
func TestMasqChain(t *testing.T) {
	if got := masqChain("berth", "66034d86f055f57392af2a97b1903f0a3319c361ef10a061ef5c55a6004f1f1f"); got != "CNI-57f60be03bdc4d3a108eba24" {
		t.Errorf("masqChain: %s", got)
	}
}
