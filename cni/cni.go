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
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-runtime/berth/internal/spawn"
	"github.com/containernetworking/cni/libcni"
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
	// LookOnly changes nothing on the host (berthd check): an idle default
	// bridge in another network's way is reported, not removed.
	LookOnly bool
	// Spawner starts the plugins; nil: one of the manager's own.
	Spawner *spawn.Spawner
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
	// podCIDR says subnet is kubelet's, not to be moved off an overlap.
	podCIDR bool
	// overlapAt is when the host's interfaces were last weighed against net.
	overlapAt  time.Time
	overlapErr error
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
	if cfg.Spawner == nil {
		cfg.Spawner = spawn.New()
	}
	return &Manager{
		cfg: cfg, log: log, subnet: cfg.DefaultSubnet,
		cni: libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, cfg.CacheDir, &pluginExec{spawner: cfg.Spawner}),
	}
}

// Current returns the network pods are set up on now, reloading it when the
// config directory changed. The error names the file and plugin at fault.
func (m *Manager) Current() (*Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fp := fingerprint(m.cfg.ConfDir) + "|" + m.subnet
	if fp != m.seen || m.net == nil && m.err == nil {
		m.seen = fp
		m.net, m.err = m.load()
		m.overlapAt = time.Time{}
		if m.err != nil {
			m.log.Warn("CNI network not ready", slog.Any("reason", m.err))
		} else {
			m.log.Info("CNI network loaded", slog.String("network", m.net.Name()), slog.String("file", m.net.File))
		}
	}
	if m.err != nil {
		return nil, m.err
	}
	// The host's interfaces change without the directory changing: weighed
	// again at most once a overlapTTL.
	if time.Since(m.overlapAt) > overlapTTL {
		was := m.overlapErr
		m.overlapErr, m.overlapAt = m.checkOverlap(m.net), time.Now()
		if m.overlapErr != nil && (was == nil || was.Error() != m.overlapErr.Error()) {
			m.log.Warn("CNI network not ready", slog.Any("reason", m.overlapErr))
		} else if m.overlapErr == nil && was != nil {
			m.log.Info("CNI network ready: the overlap is gone", slog.String("network", m.net.Name()))
		}
	}
	if m.overlapErr != nil {
		return nil, m.overlapErr
	}
	return m.net, nil
}

// SetDefaultSubnet changes the default network's range (kubelet's pod CIDR);
// it has no effect on a network configured in ConfDir.
func (m *Manager) SetDefaultSubnet(cidr string) error {
	if _, _, err := net.ParseCIDR(cidr); err != nil {
		return fmt.Errorf("pod CIDR %q: %w", cidr, err)
	}
	m.mu.Lock()
	m.subnet, m.podCIDR = cidr, true
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
	if !m.podCIDR {
		if free := freeDefaultSubnet(m.subnet, hostAddrs()); free != m.subnet {
			m.log.Warn("the default network's range is held by another interface: using a free one",
				slog.String("range", m.subnet), slog.String("using", free))
			m.subnet = free
		}
	}
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

var masqChainMissing = regexp.MustCompile(`type="bridge".*Chain '(CNI-[0-9a-f]{24})' does not exist`)

// Range is the IPv4 range the network hands out, as the first plugin's
// host-local IPAM holds it (its first range, or the older top-level
// subnet), with the gateway host-local gives the bridge (the range's first
// address) when none is set; both empty when the IPAM is not of that kind.
func (n *Network) Range() (subnet, gateway string) {
	if len(n.list.Plugins) == 0 {
		return "", ""
	}
	type rng struct{ Subnet, Gateway string }
	var conf struct {
		IPAM struct {
			rng
			Ranges [][]rng
		}
	}
	if json.Unmarshal(n.list.Plugins[0].Bytes, &conf) != nil {
		return "", ""
	}
	candidates := []rng{conf.IPAM.rng}
	for _, set := range conf.IPAM.Ranges {
		candidates = append(candidates, set...)
	}
	for _, r := range candidates {
		_, ipnet, err := net.ParseCIDR(r.Subnet)
		if err != nil || ipnet.IP.To4() == nil {
			continue
		}
		if r.Gateway == "" {
			gw := slices.Clone(ipnet.IP.To4())
			gw[3]++
			r.Gateway = gw.String()
		}
		return ipnet.String(), r.Gateway
	}
	return "", ""
}
