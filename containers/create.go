package containers

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/images/snapshot"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/ids"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/nri"
	"github.com/berth-runtime/berth/oci"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/shim"
)

// CreateRequest describes a container to create in a sandbox.
type CreateRequest struct {
	SandboxID   string
	Name        string
	Attempt     uint32
	Labels      map[string]string
	Annotations map[string]string
	Image       string
	LogPath     string // relative to the sandbox's log directory, as CRI says
	Config      []byte // the front end's record (CRI protobuf)
	Container   oci.ContainerConfig
	// Stdin keeps the process's stdin open for Attach; StdinOnce closes it
	// after the first attach ends.
	Stdin, StdinOnce bool
	// StopSignal, when set, replaces the image's (Docker's --stop-signal).
	StopSignal string
	// Forwards are host ports the container's shim serves itself (Docker's
	// ports published on IPv6 host addresses).
	Forwards []shim.Forward
	// CDIDevices are Container Device Interface devices ("vendor.com/class=name").
	CDIDevices []string
}

// Create makes a container ready to start. On failure nothing is left behind.
func (s *Service) Create(ctx context.Context, r CreateRequest) (rec store.Container, err error) {
	if r.Name == "" {
		return rec, fmt.Errorf("container name is required: %w", errdefs.ErrInvalidArgument)
	}
	defer s.cfg.NRI.BlockSync()()
	sb, err := s.sandboxes.Get(r.SandboxID)
	if err != nil {
		return rec, err
	}
	if sb.State != store.SandboxReady {
		return rec, fmt.Errorf("sandbox %s is not ready: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	img, err := s.images.Resolve(r.Image)
	if err != nil {
		return rec, err
	}
	imgCfg, err := images.Config(img)
	if err != nil {
		return rec, err
	}
	rt, err := s.runtime(sb.RuntimeHandler)
	if err != nil {
		return rec, err
	}
	for _, m := range r.Container.Mounts {
		if m.RecursiveReadonly && !s.SupportsRRO(ctx, sb.RuntimeHandler) {
			return rec, fmt.Errorf("mount %s: runtime handler %q does not support recursive read-only mounts: %w",
				m.ContainerPath, sb.RuntimeHandler, errdefs.ErrInvalidArgument)
		}
	}
	o, taken, err := s.db.Containers.First(func(o store.Container) bool {
		return o.SandboxID == r.SandboxID && o.Name == r.Name && o.Attempt == r.Attempt
	})
	if err != nil {
		return rec, err
	}
	if taken {
		return rec, fmt.Errorf("container %q (attempt %d) in sandbox %s is %s: %w", r.Name, r.Attempt, r.SandboxID, o.ID, errdefs.ErrAlreadyExists)
	}

	var volumeImages []string
	for _, m := range r.Container.Mounts {
		if m.Image == "" {
			continue
		}
		vi, err := s.images.Resolve(m.Image)
		if err != nil {
			return rec, fmt.Errorf("image volume %s: %w", m.ContainerPath, err)
		}
		volumeImages = append(volumeImages, vi.ID)
	}
	id := ids.New()
	dir := s.containerDir(id)
	rootfs := filepath.Join(dir, "bundle", "rootfs")
	logPath := ""
	if r.LogPath != "" && sb.LogDirectory != "" {
		logPath = filepath.Join(sb.LogDirectory, r.LogPath)
	}
	rec = store.Container{
		ID: id, SandboxID: sb.ID, Name: r.Name, Attempt: r.Attempt, Labels: r.Labels, Annotations: r.Annotations,
		Config: r.Config, ImageRef: r.Image, ImageID: img.ID, Runtime: rt.Path,
		RuntimeRoot: filepath.Join(s.cfg.StateDir, "runtime", rt.Name), Socket: s.socketPath(id),
		StopSignal: cmp.Or(r.StopSignal, imgCfg.Config.StopSignal), State: store.ContainerCreated, CreatedAt: time.Now().UTC(),
		LogPath: logPath, Dir: dir, VolumeImages: volumeImages, CgroupsPath: containerCgroup(sb, id), Owner: sb.Owner,
		Creating: true,
	}
	nriTold := false
	// The record first: if berthd dies below, Recover finds it and cleans up.
	if err := s.db.Containers.Create(id, rec); err != nil {
		return rec, err
	}
	defer func() {
		if err != nil {
			if nriTold {
				// Plugins that adjusted it hear it is gone, as if stopped and removed.
				uctx := context.WithoutCancel(ctx)
				s.cfg.NRI.StopContainer(uctx, sb, nri.Container{Rec: rec})
				s.cfg.NRI.RemoveContainer(uctx, sb, nri.Container{Rec: rec})
			}
			_ = s.images.Snapshots().Unmount(id, rootfs)
			if uerr := unmountVolumes(dir); uerr != nil {
				s.log.Warn("unmount image volumes", slog.String("container", id), slog.Any("error", uerr))
				return // keep the directory: it holds the image's mounts
			}
			_ = os.RemoveAll(dir)
			_ = s.db.Containers.Delete(id)
		}
	}()
	if err := os.MkdirAll(filepath.Join(dir, "bundle"), 0o711); err != nil {
		return rec, err
	}
	// In a pod with its own user namespace, the image's files are the
	// host root's and the pod's root is another uid: the layers are idmapped.
	var userns *snapshot.UserNS
	if p := sb.Namespaces["user"]; p != "" {
		userns = &snapshot.UserNS{Path: p, RootUID: hostID(sb.UIDMappings, 0), RootGID: hostID(sb.GIDMappings, 0)}
	}
	if err := s.images.Snapshots().MountIDMapped(id, images.ChainIDsOf(img), rootfs, userns); err != nil {
		return rec, err
	}
	if err := s.mountImageVolumes(dir, &r.Container); err != nil {
		return rec, err
	}
	if err := mountIDMappedVolumes(dir, sb, &r.Container); err != nil {
		return rec, err
	}
	spec, err := s.buildSpec(imgCfg.Config, sb, &r.Container, rootfs, id)
	if err != nil {
		return rec, fmt.Errorf("container %q: %w", r.Name, err)
	}
	if len(r.CDIDevices) > 0 {
		if s.cfg.CDI == nil {
			return rec, fmt.Errorf("container %q: CDI devices %s: CDI is off (cdi_spec_dirs is empty in berthd's config): %w",
				r.Name, strings.Join(r.CDIDevices, ", "), errdefs.ErrInvalidArgument)
		}
		if err := s.cfg.CDI.Inject(spec, r.CDIDevices); err != nil {
			return rec, fmt.Errorf("container %q: %w", r.Name, err)
		}
	}
	if s.cfg.NRI.Active() {
		nriTold = true
		if err := s.adjustByNRI(ctx, sb, &rec, spec, r.CDIDevices); err != nil {
			return rec, fmt.Errorf("container %q: %w", r.Name, err)
		}
	}
	if err := writeSpec(filepath.Join(dir, "bundle"), spec); err != nil {
		return rec, err
	}
	u := spec.Process.User
	user := &store.ProcessUser{UID: u.UID, GID: u.GID, Groups: u.AdditionalGids}
	if logPath != "" {
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return rec, fmt.Errorf("log directory: %w", err)
		}
	}
	client, err := shim.Spawn(ctx, s.cfg.Spawner, s.cfg.ShimPath, dir, shim.Config{
		ID: id, Bundle: filepath.Join(dir, "bundle"), Runtime: rt.Path, RuntimeRoot: rec.RuntimeRoot,
		LogPath: logPath, Socket: rec.Socket, Stdin: r.Stdin, StdinOnce: r.StdinOnce, Tty: r.Container.Tty,
		Forwards: r.Forwards, RuntimeEnv: s.runtimeEnv(),
	})
	if err != nil {
		return rec, fmt.Errorf("create container %q: %w", r.Name, err)
	}
	st, err := client.State(ctx)
	if err != nil {
		_ = client.Delete(context.WithoutCancel(ctx))
		return rec, err
	}
	cgroup := rec.CgroupsPath
	rec, err = s.db.Containers.Update(id, func(c *store.Container) error {
		c.Pid, c.User, c.CgroupsPath, c.Creating = st.Pid, user, cgroup, false
		return nil
	})
	if err != nil {
		_ = client.Delete(context.WithoutCancel(ctx))
		return rec, err
	}
	s.cfg.NRI.PostCreateContainer(ctx, sb, nri.Container{Rec: rec, Spec: spec, CDIDevices: r.CDIDevices})
	s.monitor(rec)
	s.publish(EventCreated, id, sb.ID)
	s.log.Info("container created", slog.String("container", id), slog.String("name", r.Name), slog.String("sandbox", sb.ID))
	return rec, nil
}

func (s *Service) buildSpec(img specsImageConfig, sb store.Sandbox, c *oci.ContainerConfig, rootfs, id string) (*specs.Spec, error) {
	c.Namespaces.Network = sb.Namespaces["net"]
	c.Namespaces.IPC = sb.Namespaces["ipc"]
	c.Namespaces.UTS = sb.Namespaces["uts"]
	c.Namespaces.HostNetwork = c.Namespaces.Network == ""
	c.Namespaces.HostIPC = c.Namespaces.IPC == ""
	if c.Namespaces.User = sb.Namespaces["user"]; c.Namespaces.User != "" {
		c.Namespaces.UIDMappings, c.Namespaces.GIDMappings = specIDMaps(sb.UIDMappings), specIDMaps(sb.GIDMappings)
	}
	switch {
	case c.Namespaces.TargetPID != "":
		target, err := s.db.Containers.Get(c.Namespaces.TargetPID)
		if err != nil || target.SandboxID != sb.ID || target.State != store.ContainerRunning {
			return nil, fmt.Errorf("PID namespace target %q is not a running container of this pod: %w", c.Namespaces.TargetPID, errdefs.ErrFailedPrecondition)
		}
		c.Namespaces.PID = fmt.Sprintf("/proc/%d/ns/pid", target.Pid)
	case c.Namespaces.PodPID && sb.Namespaces["pid"] != "":
		c.Namespaces.PID = sb.Namespaces["pid"]
	}
	if sb.Namespaces["ipc"] != "" {
		c.ShmPath = filepath.Join(sb.Dir, sandbox.ShmDir)
	}
	c.EtcFiles = map[string]string{
		"/etc/hosts":       filepath.Join(sb.Dir, sandbox.HostsFile),
		"/etc/resolv.conf": filepath.Join(sb.Dir, sandbox.ResolvFile),
		"/etc/hostname":    filepath.Join(sb.Dir, sandbox.HostnameFile),
	}
	if len(sb.Sysctls) > 0 {
		merged := maps.Clone(sb.Sysctls)
		maps.Copy(merged, c.Sysctls)
		c.Sysctls = merged
	}
	c.CgroupsPath = containerCgroup(sb, id)
	if c.OOMScoreAdj != nil {
		v := s.oom.clamp(*c.OOMScoreAdj)
		c.OOMScoreAdj = &v
	}
	return oci.BuildSpec(img, c, rootfs)
}

// hostID is the host's ID for id in a user namespace's mappings (-1 if unmapped).
func hostID(maps []store.IDMap, id uint32) int {
	for _, m := range maps {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return int(m.HostID + id - m.ContainerID)
		}
	}
	return -1
}

func specIDMaps(in []store.IDMap) []specs.LinuxIDMapping {
	out := make([]specs.LinuxIDMapping, len(in))
	for i, m := range in {
		out[i] = specs.LinuxIDMapping{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size}
	}
	return out
}

// containerCgroup is where a container of sandbox sb gets its cgroup.
func containerCgroup(sb store.Sandbox, id string) string {
	parent := sb.CgroupParent
	if parent == "" {
		parent = "/berth"
	}
	return filepath.Join(parent, id)
}

// runtimeEnv is what the runtime of a container's shim is given beyond the
// shim's environment: the mount seed's and view's (runc and crun ignore it).
func (s *Service) runtimeEnv() []string {
	if s.cfg.MountSeed == nil {
		return nil
	}
	return s.cfg.MountSeed()
}
