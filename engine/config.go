package engine

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/berth-runtime/berth/internal/store"
)

// Config is the part of Docker's container create request (Config, with
// its HostConfig and NetworkingConfig inside, as the API sends them) that
// Berth reads. The record keeps the request whole, as the client sent it:
// inspect shows every field, and a restart builds from it.
type Config struct {
	Image       string
	Cmd         []string
	Entrypoint  []string
	Env         []string
	WorkingDir  string
	User        string
	Labels      map[string]string
	Hostname    string
	Tty         bool
	OpenStdin   bool
	StdinOnce   bool
	StopSignal  string
	StopTimeout *int
	// ExposedPorts are `--expose` and the ports -P publishes beside the image's.
	ExposedPorts map[string]struct{}
	// Volumes are anonymous volumes' paths (`-v /path`), beside the image's.
	Volumes          map[string]struct{}
	Healthcheck      *HealthConfig
	NetworkingConfig struct {
		EndpointsConfig map[string]struct{ Aliases []string }
	}
	HostConfig HostConfig
}

// HostConfig is the create request's HostConfig.
type HostConfig struct {
	Binds          []string
	Privileged     bool
	ReadonlyRootfs bool
	Memory         int64
	NanoCpus       int64
	PidsLimit      *int64
	CapAdd         []string
	CapDrop        []string
	AutoRemove     bool
	RestartPolicy  RestartPolicy
	NetworkMode    string
	// PortBindings: "80/tcp" → [{HostIp, HostPort}].
	PortBindings    Bindings
	PublishAllPorts bool
	// Tmpfs: container path → options ("size=64m,mode=1777").
	Tmpfs   map[string]string
	Ulimits []struct {
		Name       string
		Soft, Hard int64
	}
	Sysctls                    map[string]string
	ExtraHosts                 []string
	Dns, DnsSearch, DnsOptions []string
	SecurityOpt                []string
	Mounts                     []Mount
	Init                       *bool
	GroupAdd                   []string
	ConsoleSize                *[2]uint // rows, columns of the client's terminal
	// Devices are --device: a host path, or a CDI device's qualified name.
	Devices []struct{ PathOnHost, PathInContainer, CgroupPermissions string }
	// DeviceRequests are --gpus, and CDI devices asked for by driver "cdi".
	DeviceRequests []DeviceRequest
}

// DeviceRequest is one of HostConfig.DeviceRequests.
type DeviceRequest struct {
	Driver       string
	Count        int
	DeviceIDs    []string
	Capabilities [][]string
}

// RestartPolicy is `--restart NAME[:MAX]`.
type RestartPolicy struct {
	Name              string
	MaximumRetryCount int
}

// PortBinding is one host address and port a container port is published on.
type PortBinding struct{ HostIp, HostPort string }

// Mount is one --mount.
type Mount struct {
	Type, Source, Target string
	ReadOnly             bool
	TmpfsOptions         *struct {
		SizeBytes int64
		Mode      uint32
	}
	// VolumeOptions' labels go to a volume the mount makes.
	VolumeOptions *struct{ Labels map[string]string }
}

// Annotations Berth keeps on a Docker container's record.
const (
	annotationAutoRemove = "io.berth.docker.autoremove"
	annotationCmd        = "io.berth.docker.cmd"
	annotationStdin      = "io.berth.docker.stdin"
	// annotationAnonVolumes lists the anonymous volumes made for the
	// container ("name:/path,..."), removed with it by rm -v and --rm.
	annotationAnonVolumes = "io.berth.docker.anonymous-volumes"
)

// ConfigOf is the create request c was made from (as updated since).
func ConfigOf(c store.Container) Config {
	var b Config
	_ = json.Unmarshal(c.Config, &b)
	return b
}

// Command is the command line `docker ps` shows for c.
func Command(c store.Container) string { return c.Annotations[annotationCmd] }

// StdinOpen says whether c was created with its stdin open (-i).
func StdinOpen(c store.Container) bool { return c.Annotations[annotationStdin] == "true" }

// NetworkName is the network a container's request names: its network
// mode, or with none, as dockerd reads it, the network its endpoint config
// names (testcontainers and the SDKs ask so), else bridge.
func (b Config) NetworkName() string {
	switch m := b.HostConfig.NetworkMode; m {
	case "", "default":
		if names := slices.Sorted(maps.Keys(b.NetworkingConfig.EndpointsConfig)); len(names) > 0 && names[0] != "default" {
			return names[0]
		}
		return "bridge"
	default:
		return m
	}
}

// Policy is the restart policy's name, "no" when none was given.
func (b Config) Policy() string {
	if n := b.HostConfig.RestartPolicy.Name; n != "" {
		return n
	}
	return "no"
}

// commandLine is the request's entrypoint and command, as one line.
func (b Config) commandLine() string {
	return strings.Join(append(append([]string{}, b.Entrypoint...), b.Cmd...), " ")
}
