package engine

import (
	"slices"
	"strconv"
	"strings"

	"github.com/berth-runtime/berth/internal/store"
)

// The members of networks and their names there. A container is on the
// network its request names and on those it was connected to since
// (connect.go); its peers on each find it by name, alias and short ID in
// /etc/hosts, rewritten in every member as members come and go.

// endpoint is a container on a network: its address and names there.
type endpoint struct {
	c     store.Container
	b     Config
	ip    string
	names []string
	// ifName is its interface there ("" on its first network: eth0).
	ifName string
}

// endpoints are the containers on n: those created on it and those
// connected to it since.
func (e *Engine) endpoints(n Network) []endpoint {
	all, _ := e.Containers()
	var out []endpoint
	for _, c := range all {
		b := ConfigOf(c)
		if m := b.NetworkName(); m == n.Name || m == n.ID || len(m) >= 12 && strings.HasPrefix(n.ID, m) {
			out = append(out, endpoint{c: c, b: b, ip: e.IP(c), names: aliasesOf(c, b, n)})
			continue
		}
		if a, ok := e.attachmentsOf(c.ID)[n.ID]; ok {
			names := append(append([]string{c.Name}, a.Aliases...), c.ID[:12])
			out = append(out, endpoint{c: c, b: b, ip: a.IP, names: names, ifName: a.IfName})
		}
	}
	return out
}

// Member is a container on a network, as `docker network inspect` lists it.
type Member struct {
	Container store.Container
	// IP is its address there, with the subnet's prefix length ("" without one).
	IP string
}

// Members are the containers on n.
func (e *Engine) Members(n Network) []Member {
	var out []Member
	for _, ep := range e.endpoints(n) {
		m := Member{Container: ep.c}
		if ep.ip != "" {
			m.IP = ep.ip + "/" + strconv.Itoa(n.PrefixLen())
		}
		out = append(out, m)
	}
	return out
}

// networksOf are the user networks c is on.
func (e *Engine) networksOf(c store.Container, b Config) []Network {
	var out []Network
	if n, err := e.FindNetwork(b.NetworkName()); err == nil && !n.Builtin() {
		out = append(out, n)
	}
	for id := range e.attachmentsOf(c.ID) {
		if n, err := e.FindNetwork(id); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// aliasesOf are the names a container answers to on network: its name,
// the aliases its request gave there, its short ID.
func aliasesOf(c store.Container, b Config, network Network) []string {
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
func (e *Engine) syncHosts(n Network) {
	if n.Builtin() {
		return
	}
	for _, ep := range e.endpoints(n) {
		extra := slices.Clone(ep.b.HostConfig.ExtraHosts)
		for _, net := range e.networksOf(ep.c, ep.b) {
			for _, o := range e.endpoints(net) {
				if o.c.ID != ep.c.ID && o.ip != "" {
					extra = append(extra, strings.Join(o.names, " ")+"="+o.ip)
				}
			}
		}
		if err := e.sandboxes.WriteHosts(ep.c.SandboxID, extra); err != nil {
			e.log.Warn("docker network: rewrite /etc/hosts", "container", ep.c.ID, "network", n.Name, "error", err)
		}
	}
}

// EndpointSettings is one of inspect's NetworkSettings.Networks.
type EndpointSettings struct {
	Network               Network
	EndpointID, IPAddress string
	Aliases               []string
	Gateway               string
	IPPrefixLen           int
}

// NetworkSettings are c's networks as inspect shows them: the one it was
// created on first, then those it was connected to.
func (e *Engine) NetworkSettings(c store.Container, b Config) []EndpointSettings {
	n, err := e.FindNetwork(b.NetworkName())
	if err != nil {
		n = builtinNetwork("bridge")
	}
	ip := e.IP(c)
	first := EndpointSettings{Network: n, EndpointID: c.SandboxID, IPAddress: ip, Aliases: []string{}}
	if !n.Builtin() {
		first.Aliases = aliasesOf(c, b, n)[1:]
	}
	if ip != "" {
		first.Gateway = n.Gateway
	}
	if ip != "" {
		first.IPPrefixLen = n.PrefixLen()
	}
	out := []EndpointSettings{first}
	for id, a := range e.attachmentsOf(c.ID) {
		if an, err := e.FindNetwork(id); err == nil {
			out = append(out, EndpointSettings{Network: an, EndpointID: c.SandboxID + "-" + a.IfName, IPAddress: a.IP,
				Aliases: append(slices.Clone(a.Aliases), c.ID[:12]), Gateway: an.Gateway, IPPrefixLen: an.PrefixLen()})
		}
	}
	return out
}
