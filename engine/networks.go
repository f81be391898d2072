package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Docker's networks: the three built in (bridge is berthd's default CNI
// network, host the node's, none loopback only) and user-defined bridge
// networks, each a CNI bridge of its own (br-<id>) on a /24 of
// 10.89.0.0/16 unless a subnet is given, kept as a JSON file each under
// <dir>/networks. Containers on one user network reach each other by
// name, alias and short ID through /etc/hosts (endpoints.go).

// Network is one of Docker's networks.
type Network struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Driver   string            `json:"driver"`
	Subnet   string            `json:"subnet,omitempty"`
	Gateway  string            `json:"gateway,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Created  time.Time         `json:"created"`
	Conflist json.RawMessage   `json:"conflist,omitempty"`
}

// Builtin says whether n is bridge, host or none.
func (n Network) Builtin() bool { return n.Conflist == nil }

// PrefixLen is the length of n's subnet's prefix (16 without a subnet: berth0's).
func (n Network) PrefixLen() int {
	if _, p, ok := strings.Cut(n.Subnet, "/"); ok {
		bits, _ := strconv.Atoi(p)
		return bits
	}
	return 16
}

var builtinNetworks = []string{"bridge", "host", "none"}

func builtinNetwork(name string) Network {
	sum := sha256.Sum256([]byte("berth network " + name))
	driver := name
	if name == "none" {
		driver = "null"
	}
	return Network{ID: hex.EncodeToString(sum[:]), Name: name, Driver: driver}
}

func (e *Engine) networkDir() string { return filepath.Join(e.dir, "networks") }

// Networks lists the built-in networks, then the user-defined ones.
func (e *Engine) Networks() ([]Network, error) {
	var out []Network
	for _, name := range builtinNetworks {
		n := builtinNetwork(name)
		if name == "bridge" {
			// Clients read the host's address on it from here (testcontainers
			// run inside a container dials the bridge's gateway).
			n.Subnet, n.Gateway = e.sandboxes.DefaultRange()
		}
		out = append(out, n)
	}
	ents, err := os.ReadDir(e.networkDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(e.networkDir(), ent.Name()))
		if err != nil {
			continue
		}
		var n Network
		if json.Unmarshal(b, &n) == nil && n.ID != "" {
			out = append(out, n)
		}
	}
	return out, nil
}

// FindNetwork finds a network by name, ID or unique ID prefix; "default" is bridge.
func (e *Engine) FindNetwork(ref string) (Network, error) {
	if ref == "" || ref == "default" {
		ref = "bridge"
	}
	all, err := e.Networks()
	if err != nil {
		return Network{}, err
	}
	var prefixed []Network
	for _, n := range all {
		if n.Name == ref || n.ID == ref {
			return n, nil
		}
		if strings.HasPrefix(n.ID, ref) {
			prefixed = append(prefixed, n)
		}
	}
	if len(prefixed) == 1 {
		return prefixed[0], nil
	}
	return Network{}, fmt.Errorf("network %s not found: %w", ref, errdefs.ErrNotFound)
}

// NetworkCreate is `docker network create`.
type NetworkCreate struct {
	Name, Driver string
	Internal     bool
	Labels       map[string]string
	// IPAM is the request's first IPAM config, if any.
	IPAM *IPAMConfig
}

// IPAMConfig is a network's address range, as the request gives it.
type IPAMConfig struct{ Subnet, Gateway string }

// CreateNetwork makes a user network: its record and its CNI bridge config
// (the bridge itself comes with its first member).
func (e *Engine) CreateNetwork(r NetworkCreate) (Network, error) {
	if !validName.MatchString(r.Name) {
		return Network{}, fmt.Errorf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", r.Name, errdefs.ErrInvalidArgument)
	}
	if r.Driver != "" && r.Driver != "bridge" {
		return Network{}, fmt.Errorf("network driver %q is not supported (bridge only): %w", r.Driver, errdefs.ErrUnimplemented)
	}
	e.netMu.Lock()
	defer e.netMu.Unlock()
	all, err := e.Networks()
	if err != nil {
		return Network{}, err
	}
	if slices.ContainsFunc(all, func(n Network) bool { return n.Name == r.Name }) {
		return Network{}, fmt.Errorf("network with name %s already exists: %w", r.Name, errdefs.ErrAlreadyExists)
	}
	n := Network{ID: randomID(), Name: r.Name, Driver: "bridge", Internal: r.Internal, Labels: r.Labels, Created: time.Now().UTC()}
	if n.Subnet, err = pickSubnet(r, all); err != nil {
		return Network{}, err
	}
	_, ipnet, _ := net.ParseCIDR(n.Subnet)
	gw := ipnet.IP.To4()
	gw[3]++
	n.Gateway = gw.String()
	n.Conflist = cni.BridgeConflist("berth-"+n.Name, "br-"+n.ID[:12], n.Subnet, n.Internal)
	raw, _ := json.Marshal(n)
	if err := os.MkdirAll(e.networkDir(), 0o700); err != nil {
		return Network{}, err
	}
	if err := os.WriteFile(filepath.Join(e.networkDir(), n.ID+".json"), raw, 0o600); err != nil {
		return Network{}, err
	}
	e.events.publish("network", "create", n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	return n, nil
}

// pickSubnet is the subnet asked for, or the first /24 of 10.89.0.0/16
// that no other network has.
func pickSubnet(r NetworkCreate, all []Network) (string, error) {
	if c := r.IPAM; c != nil {
		_, ipnet, err := net.ParseCIDR(c.Subnet)
		if err != nil || ipnet.IP.To4() == nil {
			return "", fmt.Errorf("invalid subnet %q (an IPv4 CIDR): %w", c.Subnet, errdefs.ErrInvalidArgument)
		}
		if slices.ContainsFunc(all, func(o Network) bool { return o.Subnet == ipnet.String() }) {
			return "", fmt.Errorf("invalid pool request: Pool overlaps with other one on this address space: %w", errdefs.ErrFailedPrecondition)
		}
		if c.Gateway != "" {
			return "", fmt.Errorf("a gateway of one's own is not supported (it is the subnet's first address): %w", errdefs.ErrUnimplemented)
		}
		return ipnet.String(), nil
	}
	for i := 0; i < 256; i++ {
		cidr := fmt.Sprintf("10.89.%d.0/24", i)
		if !slices.ContainsFunc(all, func(o Network) bool { return o.Subnet == cidr }) {
			return cidr, nil
		}
	}
	return "", fmt.Errorf("no free /24 left in 10.89.0.0/16 for a network: %w", errdefs.ErrResourceExhausted)
}

// NetworkMatches is `docker network ls --filter`: name (substring), id
// (prefix), driver, label, type (builtin or custom).
func NetworkMatches(n Network, filters Filters) bool {
	for key, values := range filters {
		if key == "label" {
			// Every label asked for, as dockerd's filters.MatchKVList.
			if !labelsMatch(n.Labels, values) {
				return false
			}
			continue
		}
		ok := false
		for _, v := range values {
			switch key {
			case "name":
				ok = ok || strings.Contains(n.Name, v)
			case "id":
				ok = ok || strings.HasPrefix(n.ID, v)
			case "driver":
				ok = ok || n.Driver == v
			case "type":
				ok = ok || v == "builtin" && n.Builtin() || v == "custom" && !n.Builtin()
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// RemoveNetwork is `docker network rm`.
func (e *Engine) RemoveNetwork(ctx context.Context, ref string) error {
	e.netMu.Lock()
	defer e.netMu.Unlock()
	n, err := e.FindNetwork(ref)
	if err != nil {
		return err
	}
	return e.deleteNetwork(ctx, n)
}

// deleteNetwork removes a user network no container is on, and its bridge.
// Call with netMu held.
func (e *Engine) deleteNetwork(ctx context.Context, n Network) error {
	if n.Builtin() {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.Name, errdefs.ErrFailedPrecondition)
	}
	if ms := e.endpoints(n); len(ms) > 0 {
		return fmt.Errorf("error while removing network: network %s id %s has active endpoints: %w", n.Name, n.ID, errdefs.ErrFailedPrecondition)
	}
	if err := os.Remove(filepath.Join(e.networkDir(), n.ID+".json")); err != nil {
		return err
	}
	e.events.publish("network", "destroy", n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	// host-local keeps its leases by network name: with no container left
	// only its bookkeeping remains, which a network made later under the
	// same name must not inherit.
	_ = os.RemoveAll(filepath.Join("/var/lib/cni/networks", "berth-"+n.Name))
	// The bridge plugin makes the bridge and never removes it.
	bridge := "br-" + n.ID[:12]
	if _, err := net.InterfaceByName(bridge); err == nil {
		if out, err := exec.CommandContext(ctx, "ip", "link", "delete", bridge).CombinedOutput(); err != nil {
			e.log.Warn("docker network rm: delete the bridge", "bridge", bridge, "error", err, "output", strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// PruneNetworks is `docker network prune`: user networks no container is
// on. It returns their names.
func (e *Engine) PruneNetworks(ctx context.Context) ([]string, error) {
	e.netMu.Lock()
	defer e.netMu.Unlock()
	all, err := e.Networks()
	if err != nil {
		return nil, err
	}
	deleted := []string{}
	for _, n := range all {
		if !n.Builtin() && len(e.endpoints(n)) == 0 && e.deleteNetwork(ctx, n) == nil {
			deleted = append(deleted, n.Name)
		}
	}
	return deleted, nil
}
