package engine

import (
	"cmp"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-runtime/berth/internal/store"
)

// What `docker inspect` shows of a container beyond its request: the
// image's config under the request's, its mounts, its networks.

// Resolved is the container's config as it runs: the request's fields,
// the image's where the request left one empty.
type Resolved struct {
	Env, Cmd, Entrypoint         []string
	WorkingDir, User, StopSignal string
	Labels                       map[string]string
}

// Resolve merges c's request b over its image's config, as dockerd shows it.
func (e *Engine) Resolve(c store.Container, b Config) Resolved {
	img := e.imageConfig(c.ImageID)
	// The request's variables, then the image's it does not set, as dockerd lists them.
	env := slices.Clone(b.Env)
	for _, kv := range img.Env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(b.Env, func(e string) bool { return strings.HasPrefix(e, k+"=") || e == k }) {
			env = append(env, kv)
		}
	}
	cmd, entrypoint := b.Cmd, b.Entrypoint
	if len(entrypoint) == 0 {
		entrypoint = img.Entrypoint
		if len(cmd) == 0 {
			cmd = img.Cmd
		}
	}
	labels := maps.Clone(img.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, c.Labels)
	return Resolved{Env: env, Cmd: cmd, Entrypoint: entrypoint, Labels: labels,
		WorkingDir: cmp.Or(b.WorkingDir, img.WorkingDir), User: cmp.Or(b.User, img.User), StopSignal: cmp.Or(b.StopSignal, img.StopSignal)}
}

// MountPoint is one of inspect's Mounts.
type MountPoint struct {
	Type, Name, Source, Destination string
	RW                              bool
}

// Mounts are c's binds, volumes and tmpfs as dockerd lists them.
func (e *Engine) Mounts(c store.Container, b Config) []MountPoint {
	out := []MountPoint{}
	add := func(typ, name, src, dst string, ro bool) {
		out = append(out, MountPoint{Type: typ, Name: name, Source: src, Destination: dst, RW: !ro})
	}
	for _, bind := range b.HostConfig.Binds {
		parts := strings.Split(bind, ":")
		if len(parts) < 2 {
			continue
		}
		ro := len(parts) > 2 && slices.Contains(strings.Split(parts[2], ","), "ro")
		if filepath.IsAbs(parts[0]) {
			add("bind", "", parts[0], parts[1], ro)
		} else {
			add("volume", parts[0], e.volumePath(parts[0]), parts[1], ro)
		}
	}
	for _, m := range b.HostConfig.Mounts {
		switch m.Type {
		case "bind":
			add("bind", "", m.Source, m.Target, m.ReadOnly)
		case "volume", "":
			add("volume", m.Source, e.volumePath(m.Source), m.Target, m.ReadOnly)
		case "tmpfs":
			add("tmpfs", "", "", m.Target, m.ReadOnly)
		}
	}
	for _, v := range anonymousOf(c) {
		name, dst, _ := strings.Cut(v, ":")
		add("volume", name, e.volumePath(name), dst, false)
	}
	return out
}

// IP is the address of c's pod on its first network ("" without one).
func (e *Engine) IP(c store.Container) string {
	if sb, err := e.sandboxes.Get(c.SandboxID); err == nil {
		return sb.IP
	}
	return ""
}
