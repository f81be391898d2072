package cli

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Flag values of run and create that take reading: restart policies,
// published ports, devices and GPUs, as the docker CLI reads them.

// restartPolicy reads --restart NAME[:MAX].
func restartPolicy(spec string) (container.RestartPolicy, error) {
	name, max, _ := strings.Cut(spec, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if max != "" {
		n, err := strconv.Atoi(max)
		if err != nil {
			return p, fmt.Errorf("invalid restart policy %q", spec)
		}
		p.MaximumRetryCount = n
	}
	return p, nil
}

// addPublished reads one -p: [IP:]HOSTPORT:PORT[/PROTO].
func addPublished(hc *container.HostConfig, spec string) error {
	var ip, hostPort, ctrPort string
	rest := spec
	if strings.HasPrefix(spec, "[") { // [IPv6]:HOST:PORT
		end := strings.Index(spec, "]:")
		if end < 0 {
			return fmt.Errorf("invalid publish spec %q: want [IP:][HOSTPORT]:PORT[/PROTO]", spec)
		}
		ip, rest = spec[1:end], spec[end+2:]
		hostPort, ctrPort, _ = strings.Cut(rest, ":")
	} else {
		parts := strings.Split(spec, ":")
		switch len(parts) {
		case 1:
			ctrPort = parts[0] // the daemon picks the host port
		case 2:
			hostPort, ctrPort = parts[0], parts[1]
		case 3:
			ip, hostPort, ctrPort = parts[0], parts[1], parts[2]
		default:
			return fmt.Errorf("invalid publish spec %q: want [IP:][HOSTPORT]:PORT[/PROTO]", spec)
		}
	}
	port, err := network.ParsePort(ctrPort)
	if err != nil {
		return fmt.Errorf("invalid publish spec %q: %w", spec, err)
	}
	b := network.PortBinding{HostPort: hostPort}
	if ip != "" {
		if b.HostIP, err = netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("invalid publish spec %q: %w", spec, err)
		}
	}
	if hc.PortBindings == nil {
		hc.PortBindings = network.PortMap{}
	}
	hc.PortBindings[port] = append(hc.PortBindings[port], b)
	return nil
}

// deviceMapping reads --device: a CDI device's name as it is, or
// HOST[:CONTAINER[:PERMS]].
func deviceMapping(d string) container.DeviceMapping {
	if strings.Contains(d, "=") {
		return container.DeviceMapping{PathOnHost: d}
	}
	parts := strings.SplitN(d, ":", 3)
	m := container.DeviceMapping{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
	if len(parts) > 1 {
		m.PathInContainer = parts[1]
	}
	if len(parts) > 2 {
		m.CgroupPermissions = parts[2]
	}
	return m
}

// gpuRequest reads --gpus as the docker CLI does: all, a count, or device=IDs.
func gpuRequest(v string) (container.DeviceRequest, error) {
	r := container.DeviceRequest{Capabilities: [][]string{{"gpu"}}}
	switch ids, isIDs := strings.CutPrefix(v, "device="); {
	case v == "all":
		r.Count = -1
	case isIDs:
		r.DeviceIDs = strings.Split(ids, ",")
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return r, fmt.Errorf("invalid argument %q for \"--gpus\" flag: want all, a count, or device=ID[,ID...]", v)
		}
		r.Count = n
	}
	return r, nil
}
