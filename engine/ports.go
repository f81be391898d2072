package engine

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

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
