package engine

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Published ports (`-p`): each binding a hostPort of the pod, which CNI's
// portmap plugin carries out.

// Port is one published port as `docker ps` lists it.
type Port struct {
	IP                      string
	PrivatePort, PublicPort int
	Type                    string
}

// portMappings turns `-p` into the pod's hostPorts (CNI portmap).
func portMappings(b map[string][]PortBinding) ([]cni.PortMapping, error) {
	var out []cni.PortMapping
	for spec, binds := range b {
		port, proto, _ := strings.Cut(spec, "/")
		if proto == "" {
			proto = "tcp"
		}
		cp, err := strconv.Atoi(port)
		if err != nil || cp <= 0 || cp > 65535 {
			return nil, fmt.Errorf("invalid port %q: %w", spec, errdefs.ErrInvalidArgument)
		}
		for _, hb := range binds {
			hp, err := strconv.Atoi(hb.HostPort)
			if err != nil || hp <= 0 || hp > 65535 {
				return nil, fmt.Errorf("invalid host port %q for %s (a host port must be given): %w", hb.HostPort, spec, errdefs.ErrInvalidArgument)
			}
			out = append(out, cni.PortMapping{HostPort: int32(hp), ContainerPort: int32(cp), HostIP: hb.HostIp, Protocol: proto})
		}
	}
	return out, nil
}

// PublishedPorts are `docker ps`'s Ports: each -p binding.
func PublishedPorts(b Config) []Port {
	out := []Port{}
	for spec, binds := range b.HostConfig.PortBindings {
		port, proto, _ := strings.Cut(spec, "/")
		cp, _ := strconv.Atoi(port)
		for _, hb := range binds {
			hp, _ := strconv.Atoi(hb.HostPort)
			out = append(out, Port{IP: cmp.Or(hb.HostIp, "0.0.0.0"), PrivatePort: cp, PublicPort: hp, Type: cmp.Or(proto, "tcp")})
		}
	}
	return out
}
