package cri

import (
	"context"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cdi"
	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/oci"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// CreateContainer creates a container in a sandbox, ready to start.
func (s *Server) CreateContainer(ctx context.Context, r *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	c := r.GetConfig()
	if r.PodSandboxId == "" || c == nil || c.GetMetadata().GetName() == "" || c.GetImage().GetImage() == "" {
		return nil, invalid("CreateContainer: pod_sandbox_id, config.metadata.name and config.image.image are required")
	}
	sbID, err := s.sandboxID(r.PodSandboxId)
	if err != nil {
		return nil, toStatus(err)
	}
	cc, err := containerConfig(c)
	if err != nil {
		return nil, err
	}
	raw, err := proto.Marshal(c)
	if err != nil {
		return nil, err
	}
	stop, err := signalNumber(c.GetStopSignal())
	if err != nil {
		return nil, invalid("CreateContainer: stop_signal: " + err.Error())
	}
	stopSignal := ""
	if stop != 0 {
		stopSignal = strconv.Itoa(stop)
	}
	devices, err := cdi.FromAnnotations(c.Annotations)
	if err != nil {
		return nil, toStatus(err)
	}
	for _, d := range c.CDIDevices {
		devices = append(devices, d.Name)
	}
	rec, err := s.containers.Create(ctx, containers.CreateRequest{
		SandboxID: sbID, Name: c.Metadata.Name, Attempt: c.Metadata.Attempt,
		Labels: c.Labels, Annotations: c.Annotations, Image: c.Image.Image, LogPath: c.LogPath,
		Config: raw, Container: cc, Stdin: c.Stdin, StdinOnce: c.StdinOnce, StopSignal: stopSignal, CDIDevices: devices,
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: rec.ID}, nil
}

// containerConfig translates CRI's ContainerConfig into Berth's.
func containerConfig(c *runtimeapi.ContainerConfig) (oci.ContainerConfig, error) {
	cc := oci.ContainerConfig{
		Command: c.Command, Args: c.Args, WorkingDir: c.WorkingDir, Annotations: c.Annotations, Tty: c.Tty,
	}
	// POD is the CRI's zero value for the PID namespace mode.
	cc.Namespaces.PodPID = true
	for _, kv := range c.Envs {
		cc.Env = append(cc.Env, kv.Key+"="+string(kv.Value))
	}
	for _, m := range c.Mounts {
		if m.GetImage().GetImage() != "" {
			// An image volume (Kubernetes' ImageVolume): always read-only.
			if m.ContainerPath == "" || !m.Readonly || m.HostPath != "" {
				return cc, invalid(fmt.Sprintf("CreateContainer: image volume %q needs container_path and readonly, and no host_path", m.ContainerPath))
			}
			cc.Mounts = append(cc.Mounts, oci.Mount{ContainerPath: m.ContainerPath, Readonly: true, Propagation: "private",
				Image: m.Image.Image, ImageSubPath: m.ImageSubPath})
			continue
		}
		if m.ContainerPath == "" || m.HostPath == "" {
			return cc, invalid(fmt.Sprintf("CreateContainer: mount %+v needs container_path and host_path", m))
		}
		prop := "private"
		switch m.Propagation {
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			prop = "rslave"
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			prop = "rshared"
		}
		if m.RecursiveReadOnly && (!m.Readonly || prop != "private") {
			return cc, invalid(fmt.Sprintf("CreateContainer: mount %s: recursive_read_only needs readonly and private propagation", m.ContainerPath))
		}
		cc.Mounts = append(cc.Mounts, oci.Mount{ContainerPath: m.ContainerPath, HostPath: m.HostPath, Readonly: m.Readonly,
			RecursiveReadonly: m.RecursiveReadOnly, Propagation: prop,
			UIDMappings: specIDMappings(m.UidMappings), GIDMappings: specIDMappings(m.GidMappings)})
	}
	for _, d := range c.Devices {
		cc.Devices = append(cc.Devices, oci.Device{ContainerPath: d.ContainerPath, HostPath: d.HostPath, Permissions: d.Permissions})
	}
	l := c.GetLinux()
	if l == nil {
		return cc, nil
	}
	if res := l.Resources; res != nil {
		cc.Resources = resources(res)
		if res.OomScoreAdj != 0 {
			v := int(res.OomScoreAdj)
			cc.OOMScoreAdj = &v
		}
	}
	sc := l.SecurityContext
	if sc == nil {
		return cc, nil
	}
	cc.Privileged = sc.Privileged
	cc.ReadonlyRootfs = sc.ReadonlyRootfs
	cc.NoNewPrivileges = sc.NoNewPrivs
	cc.Username = sc.RunAsUsername
	cc.SupplementalGroups = sc.SupplementalGroups
	cc.StrictSupplementalGroups = sc.SupplementalGroupsPolicy == runtimeapi.SupplementalGroupsPolicy_Strict
	cc.MaskedPaths, cc.ReadonlyPaths = sc.MaskedPaths, sc.ReadonlyPaths
	if sc.RunAsUser != nil {
		v := sc.RunAsUser.Value
		cc.RunAsUser = &v
	}
	if sc.RunAsGroup != nil {
		if sc.RunAsUser == nil && sc.RunAsUsername == "" {
			// A group alone would run as the image's user with another primary group (the CRI refuses it).
			return cc, invalid("CreateContainer: security_context.run_as_group needs run_as_user or run_as_username")
		}
		v := sc.RunAsGroup.Value
		cc.RunAsGroup = &v
	}
	if caps := sc.Capabilities; caps != nil {
		cc.AddCapabilities, cc.DropCapabilities = caps.AddCapabilities, caps.DropCapabilities
	}
	switch ns := sc.GetNamespaceOptions(); ns.GetPid() {
	case runtimeapi.NamespaceMode_CONTAINER:
		cc.Namespaces.PodPID = false
	case runtimeapi.NamespaceMode_NODE:
		cc.Namespaces.HostPID, cc.Namespaces.PodPID = true, false
	case runtimeapi.NamespaceMode_TARGET:
		cc.Namespaces.PodPID = false
		if ns.TargetId == "" {
			return cc, invalid("CreateContainer: PID namespace mode TARGET needs target_id")
		}
		cc.Namespaces.TargetPID = ns.TargetId
	}
	switch p := sc.Seccomp; {
	case p == nil || p.ProfileType == runtimeapi.SecurityProfile_Unconfined:
	case p.ProfileType == runtimeapi.SecurityProfile_RuntimeDefault:
		cc.Seccomp = "runtime/default"
	case p.ProfileType == runtimeapi.SecurityProfile_Localhost:
		if p.LocalhostRef == "" {
			return cc, invalid("CreateContainer: a Localhost seccomp profile needs localhost_ref")
		}
		cc.Seccomp = "localhost/" + p.LocalhostRef
	}
	return cc, nil
}

// resources translates CRI's container resources.
func resources(res *runtimeapi.LinuxContainerResources) oci.Resources {
	r := oci.Resources{
		CPUPeriod: res.CpuPeriod, CPUQuota: res.CpuQuota, CPUShares: res.CpuShares,
		MemoryLimit: res.MemoryLimitInBytes, MemorySwapLimit: res.MemorySwapLimitInBytes,
		CpusetCpus: res.CpusetCpus, CpusetMems: res.CpusetMems, Unified: res.Unified,
	}
	for _, h := range res.HugepageLimits {
		if r.HugepageLimits == nil {
			r.HugepageLimits = map[string]uint64{}
		}
		r.HugepageLimits[h.PageSize] = h.Limit
	}
	return r
}

func specIDMappings(in []*runtimeapi.IDMapping) []specs.LinuxIDMapping {
	if len(in) == 0 {
		return nil
	}
	out := make([]specs.LinuxIDMapping, len(in))
	for i, m := range in {
		out[i] = specs.LinuxIDMapping{ContainerID: m.ContainerId, HostID: m.HostId, Size: m.Length}
	}
	return out
}
