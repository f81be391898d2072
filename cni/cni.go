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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// Config says where the network configs and plugins are.
type Config struct {
	// ConfDir holds .conflist, .conf and .json network configs; the first by name is used.
	ConfDir string
	// BinDirs are searched in order for plugin binaries.
	BinDirs []string
	// CacheDir is libcni's cache of what each ADD was given and returned.
	CacheDir string
	// DefaultDir is where the default network config is written when ConfDir has none.
	DefaultDir string
	// DefaultSubnet is the default network's IPv4 range.
	DefaultSubnet string
}

// IfName is the pod's interface, as kubelet's runtimes name it.
const IfName = "eth0"

// Manager runs the plugins of the current network.
type Manager struct {
	cfg  Config
	cni  *libcni.CNIConfig
	log  *slog.Logger
	mu   sync.Mutex
	seen string   // fingerprint of ConfDir when net was loaded
	net  *Network // nil when not loadable; err says why
	err  error
	// subnet is the default network's range (UpdateRuntimeConfig may change it).
	subnet        string
	loggedDefault bool
}

// Network is one loaded network config.
type Network struct {
	// File is where it was read from.
	File string
	list *libcni.NetworkConfigList
}

// Name is the network's name.
func (n *Network) Name() string { return n.list.Name }

// Bytes is the config as loaded, to be kept with a pod so its teardown uses
// what its setup used, whatever the directory says by then.
func (n *Network) Bytes() []byte { return n.list.Bytes }

// FromBytes rebuilds a network kept with a pod.
func FromBytes(b []byte) (*Network, error) {
	list, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("kept network config: %w", err)
	}
	return &Network{File: "(kept with the pod)", list: list}, nil
}

// New returns a manager; nothing is loaded until the first call needs it.
func New(cfg Config, log *slog.Logger) *Manager {
	return &Manager{
		cfg: cfg, log: log, subnet: cfg.DefaultSubnet,
		cni: libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, cfg.CacheDir, &pluginExec{forker: newForkThread()}),
	}
}

// Current returns the network pods are set up on now, reloading it when the
// config directory changed. The error names the file and plugin at fault.
func (m *Manager) Current() (*Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fp := fingerprint(m.cfg.ConfDir) + "|" + m.subnet
	if fp == m.seen && (m.net != nil || m.err != nil) {
		return m.net, m.err
	}
	m.seen = fp
	m.net, m.err = m.load()
	if m.err != nil {
		m.log.Warn("CNI network not ready", slog.Any("reason", m.err))
	} else {
		m.log.Info("CNI network loaded", slog.String("network", m.net.Name()), slog.String("file", m.net.File))
	}
	return m.net, m.err
}

// SetDefaultSubnet changes the default network's range (kubelet's pod CIDR);
// it has no effect on a network configured in ConfDir.
func (m *Manager) SetDefaultSubnet(cidr string) error {
	if _, _, err := net.ParseCIDR(cidr); err != nil {
		return fmt.Errorf("pod CIDR %q: %w", cidr, err)
	}
	m.mu.Lock()
	m.subnet = cidr
	m.mu.Unlock()
	return nil
}

func (m *Manager) load() (*Network, error) {
	files, err := libcni.ConfFiles(m.cfg.ConfDir, []string{".conflist", ".conf", ".json"})
	if err != nil {
		return nil, fmt.Errorf("CNI config dir %s: %w", m.cfg.ConfDir, err)
	}
	slices.Sort(files)
	var n *Network
	if len(files) == 0 {
		if n, err = m.writeDefault(); err != nil {
			return nil, err
		}
	} else {
		file := files[0]
		var list *libcni.NetworkConfigList
		if strings.HasSuffix(file, ".conflist") {
			list, err = libcni.ConfListFromFile(file)
		} else {
			var one *libcni.NetworkConfig
			if one, err = libcni.ConfFromFile(file); err == nil {
				list, err = libcni.ConfListFromConf(one)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("CNI config %s: %w", file, err)
		}
		if len(list.Plugins) == 0 {
			return nil, fmt.Errorf("CNI config %s: no plugins", file)
		}
		n = &Network{File: file, list: list}
	}
	for _, p := range n.list.Plugins {
		if _, err := m.findPlugin(p.Network.Type); err != nil {
			return nil, fmt.Errorf("CNI config %s: %w", n.File, err)
		}
	}
	return n, nil
}

func (m *Manager) findPlugin(typ string) (string, error) {
	if typ == "" || strings.ContainsRune(typ, '/') {
		return "", fmt.Errorf("plugin type %q is not a plugin name", typ)
	}
	for _, d := range m.cfg.BinDirs {
		p := filepath.Join(d, typ)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("plugin %q not found in %s", typ, strings.Join(m.cfg.BinDirs, ":"))
}

// writeDefault writes the embedded default network under DefaultDir and loads it.
func (m *Manager) writeDefault() (*Network, error) {
	b := DefaultConflist(m.subnet)
	if err := os.MkdirAll(m.cfg.DefaultDir, 0o755); err != nil {
		return nil, fmt.Errorf("default CNI config: %w", err)
	}
	file := filepath.Join(m.cfg.DefaultDir, DefaultFile)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return nil, fmt.Errorf("default CNI config: %w", err)
	}
	list, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("default CNI config: %w", err)
	}
	if !m.loggedDefault {
		m.loggedDefault = true
		m.log.Info("no CNI config found: using the default bridge network", slog.String("dir", m.cfg.ConfDir),
			slog.String("bridge", DefaultBridge), slog.String("subnet", m.subnet), slog.String("written", file))
	}
	return &Network{File: file, list: list}, nil
}

// fingerprint changes whenever a file of dir is added, removed or rewritten.
func fingerprint(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "error:" + err.Error()
	}
	var b strings.Builder
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d;", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

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
// the namespace is gone, succeeds, as the CNI spec asks of plugins.
func (m *Manager) Del(ctx context.Context, n *Network, p Pod) error {
	err := m.cni.DelNetworkList(ctx, n.list, runtimeConf(p))
	if chain, ok := missingMasqChain(err); ok && !natChainExists(ctx, chain) {
		// The bridge plugin of containernetworking-plugins 1.1 (Debian 12's)
		// fails DEL when its masquerade chain is missing — an ADD cut short
		// before making it — because iptables' nf_tables backend words the
		// error in a way the plugin does not recognise as "not found". It
		// is the last step of its DEL, and with the chain gone (checked) so
		// is any rule jumping to it: DEL again without masquerading finishes.
		if list, lerr := withoutIPMasq(n.list); lerr == nil {
			err = m.cni.DelNetworkList(ctx, list, runtimeConf(p))
		}
	}
	if err != nil {
		return fmt.Errorf("CNI network %q (%s) DEL for pod %s: %w", n.Name(), n.File, p.ID, err)
	}
	return nil
}

var masqChainMissing = regexp.MustCompile(`type="bridge".*Chain '(CNI-[0-9a-f]{24})' does not exist`)

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
