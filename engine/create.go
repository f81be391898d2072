package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/sandbox"
)

// CreateRequest is `docker create`: the container's name (a random one
// when empty), its configuration, and the request as the client sent it,
// kept whole in the record.
type CreateRequest struct {
	Name   string
	Config Config
	Raw    []byte
}

// Create makes a Docker container: a pod of its own on its network, with
// its volumes, ports, hosts and DNS, and the container in it. Every option
// is checked before anything is made; what a failed create made is removed.
func (e *Engine) Create(ctx context.Context, r CreateRequest) (store.Container, error) {
	b, name := r.Config, r.Name
	if name == "" {
		name = randomName()
	}
	if !validName.MatchString(name) {
		return store.Container{}, fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	name = strings.TrimPrefix(name, "/")
	if b.Image == "" {
		return store.Container{}, fmt.Errorf("no image given: %w", errdefs.ErrInvalidArgument)
	}
	if c, err := e.Lookup(name); err == nil {
		return store.Container{}, fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name: %w", name, c.ID, errdefs.ErrAlreadyExists)
	}
	if _, err := e.images.Resolve(b.Image); err != nil {
		return store.Container{}, fmt.Errorf("No such image: %s: %w", b.Image, errdefs.ErrNotFound)
	}
	cc, err := containerConfig(b, e.ensureVolume)
	if err != nil {
		return store.Container{}, err
	}
	devices, err := cdiDevices(b)
	if err != nil {
		return store.Container{}, err
	}
	if b.HostConfig.Init != nil && *b.HostConfig.Init {
		if err := e.withInit(b, &cc); err != nil {
			return store.Container{}, err
		}
	}
	network, err := e.FindNetwork(b.NetworkName())
	if err != nil {
		return store.Container{}, err
	}
	// dockerd (API 1.44+) connects a new container to every network its
	// endpoint config names: its own first, the others once it is made.
	var more []Network
	for _, name := range slices.Sorted(maps.Keys(b.NetworkingConfig.EndpointsConfig)) {
		n, err := e.FindNetwork(name)
		if err != nil {
			return store.Container{}, err
		}
		if n.ID != network.ID && !slices.ContainsFunc(more, func(m Network) bool { return m.ID == n.ID }) {
			more = append(more, n)
		}
	}
	if len(more) > 0 && network.Builtin() && network.Name != "bridge" {
		return store.Container{}, fmt.Errorf("container cannot be connected to network %s and to the %s network: %w", more[0].Name, network.Name, errdefs.ErrInvalidArgument)
	}
	if err := checkPolicy(b.HostConfig.RestartPolicy, b.HostConfig.AutoRemove); err != nil {
		return store.Container{}, err
	}
	want, err := e.wanted(b)
	if err != nil {
		return store.Container{}, err
	}
	if err := checkHosts(b.HostConfig.ExtraHosts, b.HostConfig.Dns); err != nil {
		return store.Container{}, err
	}
	if b.StopSignal != "" {
		if _, err := linux.ParseSignal(b.StopSignal); err != nil {
			return store.Container{}, fmt.Errorf("invalid stop signal %q: %w", b.StopSignal, errdefs.ErrInvalidArgument)
		}
	}
	anon, err := e.anonymousVolumes(b, &cc)
	if err != nil {
		return store.Container{}, err
	}
	made := false
	defer func() {
		if !made {
			e.removeVolumes(anon)
		}
	}()
	var bound Bindings
	var ports []cni.PortMapping
	if network.Name != "host" && network.Name != "none" { // dockerd discards published ports there
		var done func()
		if bound, done, err = e.allocatePorts(want); err != nil {
			return store.Container{}, err
		}
		defer done() // the record holds them from here on, or the create failed
		if ports, err = portMappings(bound); err != nil {
			return store.Container{}, err
		}
	}
	var dns *sandbox.DNS
	if hc := b.HostConfig; len(hc.Dns)+len(hc.DnsSearch)+len(hc.DnsOptions) > 0 {
		dns = &sandbox.DNS{Servers: hc.Dns, Searches: hc.DnsSearch, Options: hc.DnsOptions}
	}
	ctx = context.WithoutCancel(ctx) // a client that goes away must not leave half a container
	pod, err := e.containers.RunPod(ctx, sandbox.Request{
		Name: name, Namespace: Owner, UID: name, Hostname: b.Hostname, Owner: Owner,
		LogDirectory: filepath.Join(e.logDir, name), HostNetwork: network.Name == "host",
		NoNetwork: network.Name == "none", PortMappings: ports, DNS: dns, ExtraHosts: b.HostConfig.ExtraHosts,
		Network: network.Conflist,
	})
	if err != nil {
		return store.Container{}, err
	}
	ann := map[string]string{annotationCmd: b.commandLine()}
	if b.HostConfig.AutoRemove {
		ann[annotationAutoRemove] = "true"
	}
	if b.OpenStdin {
		ann[annotationStdin] = "true"
	}
	if len(anon) > 0 {
		ann[annotationAnonVolumes] = strings.Join(anon, ",")
	}
	if len(bound) > 0 {
		raw, _ := json.Marshal(bound)
		ann[annotationPorts] = string(raw)
	}
	rec, err := e.containers.Create(ctx, containers.CreateRequest{
		SandboxID: pod.ID, Name: name, Labels: b.Labels, Annotations: ann, Image: b.Image, LogPath: "container.log",
		Container: cc, Stdin: b.OpenStdin, StdinOnce: b.OpenStdin && b.StdinOnce, Config: r.Raw, StopSignal: b.StopSignal,
		Forwards: forwards(bound, pod.IP), CDIDevices: devices,
	})
	if err != nil {
		_ = e.containers.RemovePod(ctx, pod.ID)
		return store.Container{}, err
	}
	made = true
	e.syncHosts(network) // its peers learn its name, and it theirs
	for _, n := range more {
		var aliases []string
		for key, ep := range b.NetworkingConfig.EndpointsConfig {
			if key == n.Name || key == n.ID {
				aliases = append(aliases, ep.Aliases...)
			}
		}
		if err := e.Connect(ctx, n.ID, rec.ID, aliases); err != nil {
			_ = e.Remove(ctx, rec, true, true)
			return store.Container{}, fmt.Errorf("connect to network %s: %w", n.Name, err)
		}
	}
	return rec, nil
}
