package dockerapi

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// Docker's networks: the three built in (bridge is berthd's default CNI
// network, host the node's, none loopback only) and user-defined bridge
// networks, each a CNI bridge of its own (br-<id>) on a /24 of
// 10.89.0.0/16 unless a subnet is given. Containers on one user network
// reach each other by name, alias and short ID through /etc/hosts, which
// is rewritten in every member as members come and go.
type dockerNetwork struct {
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

func (n dockerNetwork) builtin() bool { return n.Conflist == nil }

var builtinNetworks = []string{"bridge", "host", "none"}

func builtinNetwork(name string) dockerNetwork {
	sum := sha256.Sum256([]byte("berth network " + name))
	driver := name
	if name == "none" {
		driver = "null"
	}
	return dockerNetwork{ID: hex.EncodeToString(sum[:]), Name: name, Driver: driver}
}

func (s *Server) routeNetworks() {
	s.mux.HandleFunc("GET /networks", s.listNetworks)
	s.mux.HandleFunc("POST /networks/create", s.createNetwork)
	s.mux.HandleFunc("POST /networks/prune", s.pruneNetworks)
	s.mux.HandleFunc("GET /networks/{id}", s.inspectNetwork)
	s.mux.HandleFunc("DELETE /networks/{id}", s.removeNetwork)
	s.mux.HandleFunc("POST /networks/{id}/connect", s.connectNetwork)
	s.mux.HandleFunc("POST /networks/{id}/disconnect", s.disconnectNetwork)
}

func (s *Server) networkDir() string { return filepath.Join(s.dir, "networks") }

// networks lists the built-in networks, then the user-defined ones.
func (s *Server) networks() ([]dockerNetwork, error) {
	var out []dockerNetwork
	for _, name := range builtinNetworks {
		out = append(out, builtinNetwork(name))
	}
	ents, err := os.ReadDir(s.networkDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(s.networkDir(), e.Name()))
		if err != nil {
			continue
		}
		var n dockerNetwork
		if json.Unmarshal(b, &n) == nil && n.ID != "" {
			out = append(out, n)
		}
	}
	return out, nil
}

// findNetwork finds a network by name, ID or unique ID prefix; "default" is bridge.
func (s *Server) findNetwork(ref string) (dockerNetwork, error) {
	if ref == "" || ref == "default" {
		ref = "bridge"
	}
	all, err := s.networks()
	if err != nil {
		return dockerNetwork{}, err
	}
	var prefixed []dockerNetwork
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
	return dockerNetwork{}, fmt.Errorf("network %s not found: %w", ref, errdefs.ErrNotFound)
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name, Driver string
		Internal     bool
		Labels       map[string]string
		IPAM         *struct {
			Config []struct{ Subnet, Gateway, IPRange string }
		}
	}
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	if !validName.MatchString(b.Name) {
		writeError(w, fmt.Errorf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", b.Name, errdefs.ErrInvalidArgument))
		return
	}
	if b.Driver != "" && b.Driver != "bridge" {
		writeError(w, fmt.Errorf("network driver %q is not supported (bridge only): %w", b.Driver, errdefs.ErrUnimplemented))
		return
	}
	s.netMu.Lock()
	defer s.netMu.Unlock()
	all, err := s.networks()
	if err != nil {
		writeError(w, err)
		return
	}
	if slices.ContainsFunc(all, func(n dockerNetwork) bool { return n.Name == b.Name }) {
		writeError(w, fmt.Errorf("network with name %s already exists: %w", b.Name, errdefs.ErrAlreadyExists))
		return
	}
	n := dockerNetwork{ID: randomID(), Name: b.Name, Driver: "bridge", Internal: b.Internal, Labels: b.Labels, Created: time.Now().UTC()}
	if b.IPAM != nil && len(b.IPAM.Config) > 0 {
		c := b.IPAM.Config[0]
		_, ipnet, err := net.ParseCIDR(c.Subnet)
		if err != nil || ipnet.IP.To4() == nil {
			writeError(w, fmt.Errorf("invalid subnet %q (an IPv4 CIDR): %w", c.Subnet, errdefs.ErrInvalidArgument))
			return
		}
		n.Subnet = ipnet.String()
		if slices.ContainsFunc(all, func(o dockerNetwork) bool { return o.Subnet == n.Subnet }) {
			writeError(w, fmt.Errorf("invalid pool request: Pool overlaps with other one on this address space: %w", errdefs.ErrFailedPrecondition))
			return
		}
		if c.Gateway != "" {
			writeError(w, fmt.Errorf("a gateway of one's own is not supported (it is the subnet's first address): %w", errdefs.ErrUnimplemented))
			return
		}
	} else {
		for i := 0; i < 256 && n.Subnet == ""; i++ {
			cidr := fmt.Sprintf("10.89.%d.0/24", i)
			if !slices.ContainsFunc(all, func(o dockerNetwork) bool { return o.Subnet == cidr }) {
				n.Subnet = cidr
			}
		}
		if n.Subnet == "" {
			writeError(w, fmt.Errorf("no free /24 left in 10.89.0.0/16 for a network: %w", errdefs.ErrResourceExhausted))
			return
		}
	}
	_, ipnet, _ := net.ParseCIDR(n.Subnet)
	gw := ipnet.IP.To4()
	gw[3]++
	n.Gateway = gw.String()
	n.Conflist = cni.BridgeConflist("berth-"+n.Name, "br-"+n.ID[:12], n.Subnet, n.Internal)
	raw, _ := json.Marshal(n)
	if err := os.MkdirAll(s.networkDir(), 0o700); err != nil {
		writeError(w, err)
		return
	}
	if err := os.WriteFile(filepath.Join(s.networkDir(), n.ID+".json"), raw, 0o600); err != nil {
		writeError(w, err)
		return
	}
	s.events.publish("network", "create", n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	writeJSON(w, http.StatusCreated, map[string]any{"Id": n.ID, "Warning": ""})
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	all, err := s.networks()
	if err != nil {
		writeError(w, err)
		return
	}
	out := []map[string]any{}
	for _, n := range all {
		if networkMatches(n, filters) {
			out = append(out, s.networkJSON(n, false))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// networkMatches is `docker network ls --filter`: name (substring), id
// (prefix), driver, label, type (builtin or custom).
func networkMatches(n dockerNetwork, filters map[string][]string) bool {
	for key, values := range filters {
		ok := false
		for _, v := range values {
			switch key {
			case "name":
				ok = ok || strings.Contains(n.Name, v)
			case "id":
				ok = ok || strings.HasPrefix(n.ID, v)
			case "driver":
				ok = ok || n.Driver == v
			case "label":
				k, val, hasVal := strings.Cut(v, "=")
				got, has := n.Labels[k]
				ok = ok || has && (!hasVal || got == val)
			case "type":
				ok = ok || v == "builtin" && n.builtin() || v == "custom" && !n.builtin()
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (s *Server) inspectNetwork(w http.ResponseWriter, r *http.Request) {
	n, err := s.findNetwork(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.networkJSON(n, true))
}

// networkJSON is a network as dockerd lists and inspects it; with members,
// the containers on it.
func (s *Server) networkJSON(n dockerNetwork, members bool) map[string]any {
	ipam := map[string]any{"Driver": "default", "Options": map[string]string{}, "Config": []map[string]string{}}
	if n.Subnet != "" {
		ipam["Config"] = []map[string]string{{"Subnet": n.Subnet, "Gateway": n.Gateway}}
	}
	out := map[string]any{
		"Name": n.Name, "Id": n.ID, "Created": n.Created.Format(time.RFC3339Nano), "Scope": "local", "Driver": n.Driver,
		"EnableIPv6": false, "IPAM": ipam, "Internal": n.Internal, "Attachable": false, "Ingress": false,
		"ConfigFrom": map[string]string{"Network": ""}, "ConfigOnly": false, "Options": map[string]string{},
		"Labels": nonNilMap(n.Labels), "Containers": map[string]any{},
	}
	if n.builtin() {
		out["Created"] = "0001-01-01T00:00:00Z"
	}
	if members {
		cs := map[string]any{}
		for _, m := range s.members(n) {
			ip := ""
			if sb, err := s.sandboxes.Get(m.SandboxID); err == nil && sb.IP != "" {
				ip = sb.IP + "/" + prefixLen(n.Subnet)
			}
			cs[m.ID] = map[string]string{"Name": m.Name, "EndpointID": m.SandboxID, "MacAddress": "", "IPv4Address": ip, "IPv6Address": ""}
		}
		out["Containers"] = cs
	}
	return out
}

func prefixBits(cidr string) int {
	n, _ := strconv.Atoi(prefixLen(cidr))
	return n
}

func prefixLen(cidr string) string {
	if _, p, ok := strings.Cut(cidr, "/"); ok {
		return p
	}
	return "16"
}

// networkOf is the network a container's request names (bridge when none).
func networkOf(b createBody) string {
	switch m := b.HostConfig.NetworkMode; m {
	case "", "default":
		return "bridge"
	default:
		return m
	}
}

// members are the Docker containers on n.
func (s *Server) members(n dockerNetwork) []store.Container {
	var out []store.Container
	for _, e := range s.endpoints(n) {
		out = append(out, e.c)
	}
	return out
}

// endpoint is a container on a network: its address and names there.
type endpoint struct {
	c     store.Container
	b     createBody
	ip    string
	names []string
}

// endpoints are the containers on n: those created on it and those
// connected to it since.
func (s *Server) endpoints(n dockerNetwork) []endpoint {
	all, _ := s.containers.ListOwned(Owner)
	var out []endpoint
	for _, c := range all {
		var b createBody
		_ = json.Unmarshal(c.Config, &b)
		if m := networkOf(b); m == n.Name || m == n.ID || len(m) >= 12 && strings.HasPrefix(n.ID, m) {
			ip := ""
			if sb, err := s.sandboxes.Get(c.SandboxID); err == nil {
				ip = sb.IP
			}
			out = append(out, endpoint{c, b, ip, aliasesOf(c, b, n)})
			continue
		}
		if a, ok := s.attachmentsOf(c.ID)[n.ID]; ok {
			names := append(append([]string{c.Name}, a.Aliases...), c.ID[:12])
			out = append(out, endpoint{c, b, a.IP, names})
		}
	}
	return out
}

// networksOf are the user networks c is on.
func (s *Server) networksOf(c store.Container, b createBody) []dockerNetwork {
	var out []dockerNetwork
	if n, err := s.findNetwork(networkOf(b)); err == nil && !n.builtin() {
		out = append(out, n)
	}
	for id := range s.attachmentsOf(c.ID) {
		if n, err := s.findNetwork(id); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// aliasesOf are the names a container answers to on network: its name,
// the aliases its request gave there, its short ID.
func aliasesOf(c store.Container, b createBody, network dockerNetwork) []string {
	names := []string{c.Name}
	for key, ep := range b.NetworkingConfig.EndpointsConfig {
		if key == network.Name || key == network.ID {
			names = append(names, ep.Aliases...)
		}
	}
	names = append(names, c.ID[:12])
	slices.Sort(names[1:])
	return slices.Compact(names)
}

// syncHosts rewrites /etc/hosts in every container on user network n: its
// own --add-host lines, then the other containers of every network it is
// on, by their names there (one file holds them all).
func (s *Server) syncHosts(n dockerNetwork) {
	if n.builtin() {
		return
	}
	for _, e := range s.endpoints(n) {
		extra := slices.Clone(e.b.HostConfig.ExtraHosts)
		for _, net := range s.networksOf(e.c, e.b) {
			for _, o := range s.endpoints(net) {
				if o.c.ID != e.c.ID && o.ip != "" {
					extra = append(extra, strings.Join(o.names, " ")+"="+o.ip)
				}
			}
		}
		if err := s.sandboxes.WriteHosts(e.c.SandboxID, extra); err != nil {
			s.log.Warn("docker network: rewrite /etc/hosts", "container", e.c.ID, "network", n.Name, "error", err)
		}
	}
}

func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request) {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	n, err := s.findNetwork(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.deleteNetwork(r.Context(), n); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteNetwork removes a user network no container is on, and its bridge.
// Call with netMu held.
func (s *Server) deleteNetwork(ctx context.Context, n dockerNetwork) error {
	if n.builtin() {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.Name, errdefs.ErrFailedPrecondition)
	}
	if ms := s.members(n); len(ms) > 0 {
		return fmt.Errorf("error while removing network: network %s id %s has active endpoints: %w", n.Name, n.ID, errdefs.ErrFailedPrecondition)
	}
	if err := os.Remove(filepath.Join(s.networkDir(), n.ID+".json")); err != nil {
		return err
	}
	s.events.publish("network", "destroy", n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	// host-local keeps its leases by network name: with no container left
	// only its bookkeeping remains, which a network made later under the
	// same name must not inherit.
	_ = os.RemoveAll(filepath.Join("/var/lib/cni/networks", "berth-"+n.Name))
	// The bridge plugin makes the bridge and never removes it.
	bridge := "br-" + n.ID[:12]
	if _, err := net.InterfaceByName(bridge); err == nil {
		if out, err := exec.CommandContext(ctx, "ip", "link", "delete", bridge).CombinedOutput(); err != nil {
			s.log.Warn("docker network rm: delete the bridge", "bridge", bridge, "error", err, "output", strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// pruneNetworks is `docker network prune`: user networks no container is on.
func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	all, err := s.networks()
	if err != nil {
		writeError(w, err)
		return
	}
	deleted := []string{}
	for _, n := range all {
		if !n.builtin() && len(s.members(n)) == 0 && s.deleteNetwork(r.Context(), n) == nil {
			deleted = append(deleted, n.Name)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"NetworksDeleted": deleted})
}

// networkSettings is inspect's NetworkSettings: the one network the
// container is on, its address there and its aliases.
func (s *Server) networkSettings(c store.Container, b createBody, ip string) map[string]any {
	n, err := s.findNetwork(networkOf(b))
	if err != nil {
		n = builtinNetwork("bridge")
	}
	ep := map[string]any{"NetworkID": n.ID, "EndpointID": c.SandboxID, "IPAddress": ip, "Aliases": []string{}, "Gateway": "", "IPPrefixLen": 0, "MacAddress": ""}
	if !n.builtin() {
		ep["Aliases"], ep["Gateway"] = aliasesOf(c, b, n)[1:], n.Gateway
	}
	if ip != "" {
		ep["IPPrefixLen"], _ = strconv.Atoi(prefixLen(cmp.Or(n.Subnet, "10.88.0.0/16")))
	}
	networks := map[string]any{n.Name: ep}
	for id, a := range s.attachmentsOf(c.ID) {
		if an, err := s.findNetwork(id); err == nil {
			networks[an.Name] = map[string]any{"NetworkID": an.ID, "EndpointID": c.SandboxID + "-" + a.IfName, "IPAddress": a.IP,
				"Aliases": append(slices.Clone(a.Aliases), c.ID[:12]), "Gateway": an.Gateway, "IPPrefixLen": prefixBits(an.Subnet), "MacAddress": ""}
		}
	}
	settings := map[string]any{"Networks": networks, "Ports": map[string]any{}}
	if n.Name == "bridge" {
		settings["IPAddress"] = ip
	}
	return settings
}
