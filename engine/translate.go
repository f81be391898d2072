package engine

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/cdi"
	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/oci"
	"github.com/berth-runtime/berth/oci/linux"
)

// Docker's container options as an OCI container config: what each of
// `docker run`'s flags becomes, and which values it refuses.

// checkHosts refuses --add-host entries and --dns servers that are not
// "name:IP" and IPs, as dockerd does, before anything is made.
func checkHosts(extra, dns []string) error {
	for _, h := range extra {
		name, ip, ok := strings.Cut(h, "=")
		if !ok {
			name, ip, ok = strings.Cut(h, ":")
		}
		if !ok || name == "" || net.ParseIP(ip) == nil {
			return fmt.Errorf("invalid IP address in add-host: %q: %w", h, errdefs.ErrInvalidArgument)
		}
	}
	for _, d := range dns {
		if net.ParseIP(d) == nil {
			return fmt.Errorf("%s is not an ip address: %w", d, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// containerConfig translates Docker's request into Berth's terms; volume
// gives the directory of a named volume (making it).
func containerConfig(b Config, volume func(name string, labels map[string]string) (string, error)) (oci.ContainerConfig, error) {
	c := oci.ContainerConfig{
		Command: b.Entrypoint, Args: b.Cmd, Env: b.Env, WorkingDir: b.WorkingDir, Hostname: b.Hostname, Tty: b.Tty,
		ConsoleSize: b.HostConfig.ConsoleSize,
		Privileged:  b.HostConfig.Privileged, ReadonlyRootfs: b.HostConfig.ReadonlyRootfs,
		AddCapabilities: b.HostConfig.CapAdd, DropCapabilities: b.HostConfig.CapDrop, Seccomp: "runtime/default",
	}
	if b.HostConfig.Privileged {
		c.Seccomp = "unconfined"
	}
	if u := b.User; u != "" {
		user, group, hasGroup := strings.Cut(u, ":")
		if n, err := strconv.ParseInt(user, 10, 64); err == nil {
			c.RunAsUser = &n
		} else {
			c.Username = user
		}
		if hasGroup {
			g, err := strconv.ParseInt(group, 10, 64)
			if err != nil {
				return c, fmt.Errorf("user %q: only a numeric group is supported: %w", u, errdefs.ErrInvalidArgument)
			}
			c.RunAsGroup = &g
		}
	}
	c.Resources.MemoryLimit = b.HostConfig.Memory
	if n := b.HostConfig.NanoCpus; n > 0 {
		c.Resources.CPUPeriod = 100000
		c.Resources.CPUQuota = n * 100000 / 1e9
	}
	if p := b.HostConfig.PidsLimit; p != nil && *p > 0 {
		c.Resources.PidsLimit = *p
	}
	for _, bind := range b.HostConfig.Binds {
		parts := strings.Split(bind, ":")
		if len(parts) < 2 || parts[0] == "" || !filepath.IsAbs(parts[1]) {
			return c, fmt.Errorf("invalid bind %q: want /host/path:/container/path[:ro] or volume:/container/path[:ro]: %w", bind, errdefs.ErrInvalidArgument)
		}
		m := oci.Mount{HostPath: parts[0], ContainerPath: parts[1], Propagation: "private"}
		if !filepath.IsAbs(parts[0]) {
			p, err := volume(parts[0], nil)
			if err != nil {
				return c, err
			}
			m.HostPath = p
		}
		if len(parts) > 2 {
			for _, o := range strings.Split(parts[2], ",") {
				m.Readonly = m.Readonly || o == "ro"
			}
		}
		c.Mounts = append(c.Mounts, m)
	}
	for _, dev := range b.HostConfig.Devices {
		if cdi.IsDevice(dev.PathOnHost) {
			continue // cdiDevices'
		}
		if !filepath.IsAbs(dev.PathOnHost) {
			return c, fmt.Errorf("invalid device %q: want a host path or a CDI device name (vendor.com/class=name): %w", dev.PathOnHost, errdefs.ErrInvalidArgument)
		}
		if _, err := os.Stat(dev.PathOnHost); err != nil {
			return c, fmt.Errorf("error gathering device information while adding custom device %q: %w", dev.PathOnHost, errors.Join(err, errdefs.ErrInvalidArgument))
		}
		c.Devices = append(c.Devices, oci.Device{HostPath: dev.PathOnHost, ContainerPath: cmp.Or(dev.PathInContainer, dev.PathOnHost),
			Permissions: cmp.Or(dev.CgroupPermissions, "rwm")})
	}
	for _, mb := range b.HostConfig.Mounts {
		m, err := mountConfig(mb, volume)
		if err != nil {
			return c, err
		}
		c.Mounts = append(c.Mounts, m)
	}
	for dst, opts := range b.HostConfig.Tmpfs {
		if !filepath.IsAbs(dst) {
			return c, fmt.Errorf("invalid tmpfs %q: the path must be absolute: %w", dst, errdefs.ErrInvalidArgument)
		}
		m := oci.Mount{ContainerPath: dst, Tmpfs: true}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "":
			case "ro":
				m.Readonly = true
			case "rw":
			default:
				m.TmpfsOptions = append(m.TmpfsOptions, o)
			}
		}
		c.Mounts = append(c.Mounts, m)
	}
	for _, u := range b.HostConfig.Ulimits {
		name := "RLIMIT_" + strings.ToUpper(u.Name)
		if !linux.KnownRlimit(name) || u.Soft < 0 || u.Hard < 0 || u.Soft > u.Hard {
			return c, fmt.Errorf("invalid ulimit %s=%d:%d: %w", u.Name, u.Soft, u.Hard, errdefs.ErrInvalidArgument)
		}
		c.Rlimits = append(c.Rlimits, specs.POSIXRlimit{Type: name, Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	c.Sysctls = b.HostConfig.Sysctls
	for _, g := range b.HostConfig.GroupAdd {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return c, fmt.Errorf("group-add %q: only numeric groups are supported: %w", g, errdefs.ErrInvalidArgument)
		}
		c.SupplementalGroups = append(c.SupplementalGroups, n)
	}
	for _, opt := range b.HostConfig.SecurityOpt {
		k, v, _ := strings.Cut(opt, "=")
		if !strings.Contains(opt, "=") {
			k, v, _ = strings.Cut(opt, ":") // the old form, "seccomp:unconfined"
		}
		switch {
		case k == "seccomp" && v == "unconfined":
			c.Seccomp = "unconfined"
		case k == "seccomp":
			c.Seccomp, c.SeccompProfile = "inline", []byte(v) // the CLI sends the file's content
		case k == "no-new-privileges" && (v == "" || v == "true"):
			c.NoNewPrivileges = true
		case k == "no-new-privileges" && v == "false":
		case k == "apparmor" || k == "label":
			// Neither AppArmor nor SELinux is in this kernel's set-up; accepted, as dockerd does without them.
		default:
			return c, fmt.Errorf("invalid --security-opt %q: %w", opt, errdefs.ErrInvalidArgument)
		}
	}
	return c, nil
}

// mountConfig translates one --mount (bind, volume or tmpfs).
func mountConfig(mb Mount, volume func(name string, labels map[string]string) (string, error)) (oci.Mount, error) {
	m := oci.Mount{ContainerPath: mb.Target, HostPath: mb.Source, Readonly: mb.ReadOnly, Propagation: "private"}
	if !filepath.IsAbs(mb.Target) {
		return m, fmt.Errorf("invalid mount target %q: must be an absolute path: %w", mb.Target, errdefs.ErrInvalidArgument)
	}
	switch mb.Type {
	case "bind":
		if !filepath.IsAbs(mb.Source) {
			return m, fmt.Errorf("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute: %w", mb.Source, errdefs.ErrInvalidArgument)
		}
		if _, err := os.Stat(mb.Source); err != nil {
			return m, fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s: %w", mb.Source, errdefs.ErrInvalidArgument)
		}
	case "volume", "":
		name := mb.Source
		if name == "" {
			name = randomID() // an anonymous volume
		}
		var labels map[string]string
		if mb.VolumeOptions != nil {
			labels = mb.VolumeOptions.Labels
		}
		p, err := volume(name, labels)
		if err != nil {
			return m, err
		}
		m.HostPath = p
	case "tmpfs":
		m.Tmpfs, m.HostPath = true, ""
		if o := mb.TmpfsOptions; o != nil {
			if o.SizeBytes > 0 {
				m.TmpfsOptions = append(m.TmpfsOptions, "size="+strconv.FormatInt(o.SizeBytes, 10))
			}
			if o.Mode != 0 {
				m.TmpfsOptions = append(m.TmpfsOptions, fmt.Sprintf("mode=%o", o.Mode))
			}
		}
	default:
		return m, fmt.Errorf("mount type %q is not supported (bind, volume, tmpfs): %w", mb.Type, errdefs.ErrInvalidArgument)
	}
	return m, nil
}

// withInit is --init: the container's command runs under docker-init,
// bound read-only at /sbin/docker-init, which reaps and forwards signals.
func (e *Engine) withInit(b Config, c *oci.ContainerConfig) error {
	if e.initBin == "" {
		return fmt.Errorf("--init: no init binary is configured: %w", errdefs.ErrUnimplemented)
	}
	img := e.imageConfig(b.Image)
	args := slices.Concat(b.Entrypoint, b.Cmd)
	switch {
	case len(b.Entrypoint) == 0 && len(b.Cmd) == 0:
		args = slices.Concat(img.Entrypoint, img.Cmd)
	case len(b.Entrypoint) == 0:
		args = slices.Concat(img.Entrypoint, b.Cmd)
	}
	if len(args) == 0 {
		return fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	c.Command, c.Args = append([]string{"/sbin/docker-init", "--"}, args...), nil
	c.Mounts = append(c.Mounts, oci.Mount{ContainerPath: "/sbin/docker-init", HostPath: e.initBin, Readonly: true, Propagation: "private"})
	return nil
}

// imageConfig is the config of image ref (empty when it cannot be read).
func (e *Engine) imageConfig(ref string) ocispec.ImageConfig {
	if rec, err := e.images.Resolve(ref); err == nil {
		if cfg, err := images.Config(rec); err == nil {
			return cfg.Config
		}
	}
	return ocispec.ImageConfig{}
}

// cdiDevices are the CDI devices a request names: --device with a
// qualified name (Docker 25+), driver "cdi" requests, and --gpus, which
// Docker 28 carries out through CDI as NVIDIA's devices
// (nvidia.com/gpu=all, =0, ...).
func cdiDevices(b Config) ([]string, error) {
	var out []string
	for _, dev := range b.HostConfig.Devices {
		if cdi.IsDevice(dev.PathOnHost) {
			out = append(out, dev.PathOnHost)
		}
	}
	for _, r := range b.HostConfig.DeviceRequests {
		gpu := slices.ContainsFunc(r.Capabilities, func(c []string) bool { return slices.Contains(c, "gpu") })
		switch {
		case r.Driver == "cdi":
			out = append(out, r.DeviceIDs...)
		case gpu && (r.Driver == "" || r.Driver == "nvidia"):
			ids := r.DeviceIDs
			if len(ids) == 0 && r.Count < 0 {
				ids = []string{"all"}
			}
			for i := 0; len(r.DeviceIDs) == 0 && i < r.Count; i++ {
				ids = append(ids, strconv.Itoa(i))
			}
			for _, id := range ids {
				out = append(out, "nvidia.com/gpu="+id)
			}
		default:
			return nil, fmt.Errorf("could not select device driver %q with capabilities: %v: %w", r.Driver, r.Capabilities, errdefs.ErrInvalidArgument)
		}
	}
	return out, nil
}
