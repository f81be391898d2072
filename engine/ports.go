package engine

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/shim"
)

// Published ports (`-p`, `-P`): each binding a hostPort of the pod, which
// CNI's portmap plugin carries out. A binding without a host port (`-p
// 8080`, `-p 127.0.0.1::8080`, HostPort "" or "0", and every exposed port
// with -P) gets one the daemon picks from the kernel's ephemeral range, as
// dockerd's allocator does; a host port range (`-p 8000-8010:80`) gets the
// first free one of it. A port is free when no Docker container holds it
// and it can be bound on the host at that moment. The ports chosen are
// kept in the record (annotationPorts): the same after a restart of the
// container or of berthd, free again once the container is removed.

// annotationPorts holds the bindings as made: "80/tcp" → [{HostIp, HostPort}].
const annotationPorts = "io.berth.docker.ports"

// Port is one port of a container as `docker ps` lists it: published
// (IP and PublicPort set) or only exposed.
type Port struct {
	IP                      string
	PrivatePort, PublicPort int
	Type                    string
}

// Bindings are published ports: "80/tcp" → where it is published.
type Bindings map[string][]PortBinding

// ports hands out host ports: reserved holds those being given to
// containers still being created (not yet in a record).
type ports struct {
	mu       sync.Mutex
	reserved map[string]bool // "tcp/32768"
	next     int
}

// portSpec splits "80/tcp" into its port and protocol (tcp when none).
func portSpec(spec string) (int, string, error) {
	port, proto, _ := strings.Cut(spec, "/")
	proto = cmp.Or(strings.ToLower(proto), "tcp")
	cp, err := strconv.Atoi(port)
	if err != nil || cp <= 0 || cp > 65535 {
		return 0, "", fmt.Errorf("invalid port %q: %w", spec, errdefs.ErrInvalidArgument)
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return 0, "", fmt.Errorf("invalid proto %q for port %s: want tcp, udp or sctp: %w", proto, spec, errdefs.ErrInvalidArgument)
	}
	return cp, proto, nil
}

// exposedPorts are the ports c's image and request expose, and those it
// publishes, as "80/tcp".
func (e *Engine) exposedPorts(image string, b Config) []string {
	set := map[string]bool{}
	add := func(spec string) {
		if p, proto, err := portSpec(spec); err == nil {
			set[strconv.Itoa(p)+"/"+proto] = true
		}
	}
	for spec := range e.imageConfig(image).ExposedPorts {
		add(spec)
	}
	for spec := range b.ExposedPorts {
		add(spec)
	}
	for spec := range b.HostConfig.PortBindings {
		add(spec)
	}
	return slices.Sorted(maps.Keys(set))
}

// wanted are the bindings the request asks for: its PortBindings, and with
// -P every exposed port it does not bind, on a port the daemon picks.
func (e *Engine) wanted(b Config) (Bindings, error) {
	out := Bindings{}
	for spec, binds := range b.HostConfig.PortBindings {
		p, proto, err := portSpec(spec)
		if err != nil {
			return nil, err
		}
		key := strconv.Itoa(p) + "/" + proto
		if len(binds) == 0 {
			binds = []PortBinding{{}}
		}
		out[key] = append(out[key], binds...)
	}
	if b.HostConfig.PublishAllPorts {
		for _, spec := range e.exposedPorts(b.Image, b) {
			if _, ok := out[spec]; !ok {
				out[spec] = []PortBinding{{}}
			}
		}
	}
	return out, nil
}

// allocatePorts gives each wanted binding its host port. done must be
// called once the container's record holds them (or its create failed).
func (e *Engine) allocatePorts(want Bindings) (Bindings, func(), error) {
	return e.ports.allocate(want, e.heldPorts)
}

// allocate is allocatePorts with the ports containers' records hold given
// by heldBy, read under p.mu so that no create in flight goes unseen.
func (p *ports) allocate(want Bindings, heldBy func() map[string]bool) (Bindings, func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reserved == nil {
		p.reserved = map[string]bool{}
	}
	held := heldBy()
	var mine []string
	// unreserve runs with p.mu held; release is done's form, taking it.
	unreserve := func() {
		for _, k := range mine {
			delete(p.reserved, k)
		}
	}
	release := func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		unreserve()
	}
	out := Bindings{}
	dual := hostHasIPv6()
	for _, spec := range slices.Sorted(maps.Keys(want)) {
		_, proto, _ := portSpec(spec)
		for _, hb := range want[spec] {
			ip := hb.HostIp
			if ip == "0.0.0.0" {
				ip = "" // every IPv4 address, as portmap reads ""
			}
			// The addresses the binding takes: IPv4 (portmap's), IPv6
			// (the shim's), or for "" both, as dockerd publishes on 0.0.0.0
			// and :: when the host has IPv6.
			var addrs []string
			switch a := net.ParseIP(ip); {
			case ip == "":
				addrs = []string{""}
				if dual && hb.HostIp == "" && proto != "sctp" {
					addrs = append(addrs, "::")
				}
			case a == nil:
				unreserve()
				return nil, nil, fmt.Errorf("invalid host address %q for %s: %w", ip, spec, errdefs.ErrInvalidArgument)
			case a.To4() == nil && proto == "sctp":
				unreserve()
				return nil, nil, fmt.Errorf("publishing %s on the IPv6 address %s is not supported (sctp is published on IPv4 only): %w", spec, ip, errdefs.ErrInvalidArgument)
			default:
				addrs = []string{ip}
			}
			lo, hi, picked, err := hostPortRange(hb.HostPort, spec)
			if err != nil {
				unreserve()
				return nil, nil, err
			}
			port := 0
			free := func(n int) bool {
				k := proto + "/" + strconv.Itoa(n)
				if held[k] || p.reserved[k] {
					return false
				}
				for _, a := range addrs {
					if !bindable(proto, a, n) {
						return false
					}
				}
				return true
			}
			if picked {
				port = p.pick(lo, hi, free)
			} else {
				for n := lo; n <= hi && port == 0; n++ {
					if free(n) {
						port = n
					}
				}
			}
			if port == 0 {
				unreserve()
				return nil, nil, fmt.Errorf("Bind for %s:%s failed: port is already allocated", cmp.Or(hb.HostIp, "0.0.0.0"), cmp.Or(hb.HostPort, "0"))
			}
			k := proto + "/" + strconv.Itoa(port)
			p.reserved[k] = true
			mine = append(mine, k)
			for _, a := range addrs {
				out[spec] = append(out[spec], PortBinding{HostIp: a, HostPort: strconv.Itoa(port)})
			}
		}
	}
	return out, release, nil
}

// hostHasIPv6 says whether IPv6 ports can be published here.
func hostHasIPv6() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// hostPortRange reads a binding's HostPort: one port, a range "a-b", or
// none ("", "0": the daemon picks one from the ephemeral range).
func hostPortRange(hp, spec string) (lo, hi int, picked bool, err error) {
	if hp == "" || hp == "0" {
		lo, hi = ephemeralRange()
		return lo, hi, true, nil
	}
	a, b, isRange := strings.Cut(hp, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := lo, error(nil)
	if isRange {
		hi, err2 = strconv.Atoi(b)
	}
	if err1 != nil || err2 != nil || lo <= 0 || hi > 65535 || hi < lo {
		return 0, 0, false, fmt.Errorf("invalid host port %q for %s: want a port, a range a-b, or none: %w", hp, spec, errdefs.ErrInvalidArgument)
	}
	return lo, hi, false, nil
}

// pick is the next free port of [lo, hi] after the last one picked,
// wrapping once, as dockerd's allocator goes round its range.
func (p *ports) pick(lo, hi int, free func(int) bool) int {
	start := p.next
	if start < lo || start > hi {
		start = lo
	}
	for i := 0; i <= hi-lo; i++ {
		port := lo + (start-lo+i)%(hi-lo+1)
		if free(port) {
			p.next = port + 1
			return port
		}
	}
	return 0
}

// ephemeralRange is the kernel's ephemeral port range (dockerd's too).
func ephemeralRange() (int, int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
		lo, err1 := strconv.Atoi(f[0])
		hi, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil && lo > 0 && hi >= lo {
			return lo, hi
		}
	}
	return 32768, 60999
}

// bindable says whether port can be bound on the host (ip "" is every
// IPv4 address, "::" every IPv6 one): no host process has it.
func bindable(proto, ip string, port int) bool {
	addr := net.JoinHostPort(cmp.Or(ip, "0.0.0.0"), strconv.Itoa(port))
	family := "4"
	if a := net.ParseIP(ip); a != nil && a.To4() == nil {
		family = "6"
	}
	switch proto {
	case "udp":
		c, err := net.ListenPacket("udp"+family, addr)
		if err != nil {
			return false
		}
		c.Close()
	case "tcp":
		l, err := net.Listen("tcp"+family, addr)
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// isIPv6 says whether a binding's host address is an IPv6 one.
func isIPv6(hostIP string) bool {
	a := net.ParseIP(hostIP)
	return a != nil && a.To4() == nil
}

// forwards are the bindings on IPv6 host addresses, which the container's
// shim serves itself, to the pod's IPv4 address podIP.
func forwards(b Bindings, podIP string) []shim.Forward {
	var out []shim.Forward
	for _, spec := range slices.Sorted(maps.Keys(b)) {
		cp, proto, _ := portSpec(spec)
		for _, hb := range b[spec] {
			if hp, err := strconv.Atoi(hb.HostPort); err == nil && isIPv6(hb.HostIp) && podIP != "" {
				out = append(out, shim.Forward{Proto: proto, HostIP: hb.HostIp, HostPort: hp, Target: net.JoinHostPort(podIP, strconv.Itoa(cp))})
			}
		}
	}
	return out
}

// heldPorts are the host ports Docker containers hold ("tcp/8080").
func (e *Engine) heldPorts() map[string]bool {
	held := map[string]bool{}
	all, _ := e.Containers()
	for _, c := range all {
		for spec, binds := range portsOf(c) {
			_, proto, _ := portSpec(spec)
			for _, hb := range binds {
				held[proto+"/"+hb.HostPort] = true
			}
		}
	}
	return held
}

// portsOf are c's bindings as made: the record's, or for a container made
// before Berth recorded them, its request's.
func portsOf(c store.Container) Bindings {
	var b Bindings
	if v := c.Annotations[annotationPorts]; v != "" && json.Unmarshal([]byte(v), &b) == nil {
		return b
	}
	return ConfigOf(c).HostConfig.PortBindings
}

// portMappings are bindings as the pod's hostPorts (CNI portmap).
func portMappings(b Bindings) ([]cni.PortMapping, error) {
	var out []cni.PortMapping
	for spec, binds := range b {
		cp, proto, err := portSpec(spec)
		if err != nil {
			return nil, err
		}
		for _, hb := range binds {
			if isIPv6(hb.HostIp) {
				continue // the shim's (forwards)
			}
			hp, err := strconv.Atoi(hb.HostPort)
			if err != nil || hp <= 0 || hp > 65535 {
				return nil, fmt.Errorf("invalid host port %q for %s: %w", hb.HostPort, spec, errdefs.ErrInvalidArgument)
			}
			out = append(out, cni.PortMapping{HostPort: int32(hp), ContainerPort: int32(cp), HostIP: hb.HostIp, Protocol: proto})
		}
	}
	return out, nil
}

// PortMap is inspect's NetworkSettings.Ports: every exposed port, with
// where it is published, or nil (JSON null) when it is not. Containers on
// the host's network or none publish nothing: an empty map.
func (e *Engine) PortMap(c store.Container, b Config) map[string][]PortBinding {
	out := map[string][]PortBinding{}
	if n := b.NetworkName(); n == "host" || n == "none" {
		return out
	}
	made := portsOf(c)
	for _, spec := range e.exposedPorts(c.ImageID, b) {
		var binds []PortBinding
		for _, hb := range made[spec] {
			binds = append(binds, PortBinding{HostIp: cmp.Or(hb.HostIp, "0.0.0.0"), HostPort: hb.HostPort})
		}
		out[spec] = binds
	}
	return out
}

// Ports are `docker ps`'s Ports: each published binding, then each port
// exposed but not published.
func (e *Engine) Ports(c store.Container, b Config) []Port {
	out := []Port{}
	pm := e.PortMap(c, b)
	for _, spec := range slices.Sorted(maps.Keys(pm)) {
		cp, proto, _ := portSpec(spec)
		if len(pm[spec]) == 0 {
			out = append(out, Port{PrivatePort: cp, Type: proto})
		}
		for _, hb := range pm[spec] {
			hp, _ := strconv.Atoi(hb.HostPort)
			out = append(out, Port{IP: hb.HostIp, PrivatePort: cp, PublicPort: hp, Type: proto})
		}
	}
	return out
}
