package nri

import (
	"maps"
	"strings"

	api "github.com/containerd/nri/pkg/api"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/store"
)

// Container is what plugins are told of a container: its record and the
// spec it runs (or is about to run) with.
type Container struct {
	Rec  store.Container
	Spec *specs.Spec
	// CDIDevices are the CDI devices its request named.
	CDIDevices []string
}

// nsTypes maps Berth's namespace keys to the OCI namespace types plugins see.
var nsTypes = map[string]string{"net": "network", "ipc": "ipc", "uts": "uts", "pid": "pid", "user": "user"}

// podOf is the pod as plugins see it.
func podOf(sb store.Sandbox) *api.PodSandbox {
	p := &api.PodSandbox{
		Id: sb.ID, Name: sb.Name, Uid: sb.UID, Namespace: sb.Namespace,
		Labels: maps.Clone(sb.Labels), Annotations: maps.Clone(sb.Annotations),
		RuntimeHandler: sb.RuntimeHandler, Pid: uint32(sb.PausePid),
		Linux: &api.LinuxPodSandbox{CgroupParent: sb.CgroupParent, CgroupsPath: sb.CgroupParent},
	}
	for _, k := range []string{"net", "ipc", "uts", "pid", "user"} {
		if path := sb.Namespaces[k]; path != "" {
			p.Linux.Namespaces = append(p.Linux.Namespaces, &api.LinuxNamespace{Type: nsTypes[k], Path: path})
		}
	}
	if sb.IP != "" {
		p.Ips = append([]string{sb.IP}, sb.AdditionalIPs...)
	}
	return p
}

// containerOf is the container as plugins see it.
func containerOf(c Container) *api.Container {
	r := c.Rec
	out := &api.Container{
		Id: r.ID, PodSandboxId: r.SandboxID, Name: r.Name, State: stateOf(r),
		Labels: maps.Clone(r.Labels), Annotations: maps.Clone(r.Annotations),
		Pid: uint32(r.Pid), CreatedAt: r.CreatedAt.UnixNano(), ExitCode: r.ExitCode,
		StatusReason: r.Reason, StatusMessage: r.Message,
	}
	if !r.StartedAt.IsZero() {
		out.StartedAt = r.StartedAt.UnixNano()
	}
	if !r.FinishedAt.IsZero() {
		out.FinishedAt = r.FinishedAt.UnixNano()
	}
	for _, d := range c.CDIDevices {
		out.CDIDevices = append(out.CDIDevices, &api.CDIDevice{Name: d})
	}
	if r.ImageRef != "" {
		out.Image = &api.Image{Name: r.ImageRef}
	}
	s := c.Spec
	if s == nil {
		return out
	}
	if len(s.Annotations) > 0 {
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		for k, v := range s.Annotations {
			if _, ok := out.Annotations[k]; !ok {
				out.Annotations[k] = v
			}
		}
	}
	out.Mounts = api.FromOCIMounts(s.Mounts)
	out.Hooks = api.FromOCIHooks(s.Hooks)
	if p := s.Process; p != nil {
		out.Args, out.Env = p.Args, p.Env
		for _, l := range p.Rlimits {
			out.Rlimits = append(out.Rlimits, &api.POSIXRlimit{Type: l.Type, Hard: l.Hard, Soft: l.Soft})
		}
		out.User = &api.User{Uid: p.User.UID, Gid: p.User.GID, AdditionalGids: p.User.AdditionalGids}
	}
	if l := s.Linux; l != nil {
		out.Linux = &api.LinuxContainer{
			Namespaces:  api.FromOCILinuxNamespaces(l.Namespaces),
			Devices:     api.FromOCILinuxDevices(l.Devices),
			Resources:   api.FromOCILinuxResources(l.Resources, s.Annotations),
			CgroupsPath: l.CgroupsPath,
			Sysctl:      maps.Clone(l.Sysctl),
		}
		if l.Seccomp != nil {
			out.Linux.SeccompPolicy = api.FromOCILinuxSeccomp(l.Seccomp)
		}
		if p := s.Process; p != nil {
			if p.OOMScoreAdj != nil {
				out.Linux.OomScoreAdj = api.Int(*p.OOMScoreAdj)
			}
			out.Linux.IoPriority = api.FromOCILinuxIOPriority(p.IOPriority)
		}
	}
	return out
}

func stateOf(r store.Container) api.ContainerState {
	switch {
	case r.Paused:
		return api.ContainerState_CONTAINER_PAUSED
	case r.State == store.ContainerCreated:
		return api.ContainerState_CONTAINER_CREATED
	case r.State == store.ContainerRunning:
		return api.ContainerState_CONTAINER_RUNNING
	case r.State == store.ContainerExited:
		return api.ContainerState_CONTAINER_STOPPED
	}
	return api.ContainerState_CONTAINER_UNKNOWN
}

// describe names the plugins' updates for a log line.
func describe(u []*api.ContainerUpdate) string {
	ids := make([]string, len(u))
	for i, x := range u {
		ids[i] = x.GetContainerId()
	}
	return strings.Join(ids, ",")
}
