package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci"
)

// Volumes of the local driver: a directory each under the root,
// <volumes>/<name>/_data (dockerd's layout), made on first use. Anonymous
// volumes (64 hex digits) are made for the paths a request's Volumes or
// its image's VOLUME name, and go with their container by rm -v and --rm.
// A volume's labels, given when it is made, sit beside its data in
// <volumes>/<name>/labels.json.

var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Volume is one local volume.
type Volume struct {
	Name, Mountpoint string
	CreatedAt        time.Time
	Labels           map[string]string
}

func (e *Engine) volumePath(name string) string { return filepath.Join(e.volumeDir, name, "_data") }

func (e *Engine) volumeLabelsPath(name string) string {
	return filepath.Join(e.volumeDir, name, "labels.json")
}

// ensureVolume makes volume name with labels if it is not there yet (an
// existing one keeps the labels it was made with, as dockerd's does).
func (e *Engine) ensureVolume(name string, labels map[string]string) (string, error) {
	if !volumeName.MatchString(name) {
		return "", fmt.Errorf("volume name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	p := e.volumePath(name)
	_, err := os.Stat(p)
	fresh := errors.Is(err, os.ErrNotExist)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	if fresh && len(labels) > 0 {
		b, _ := json.Marshal(labels)
		if err := os.WriteFile(e.volumeLabelsPath(name), b, 0o644); err != nil {
			return "", fmt.Errorf("volume %s: labels: %w", name, err)
		}
	}
	return p, nil
}

// InspectVolume is volume name.
func (e *Engine) InspectVolume(name string) (Volume, error) {
	fi, err := os.Stat(e.volumePath(name))
	if errors.Is(err, os.ErrNotExist) {
		return Volume{}, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	if err != nil {
		return Volume{}, err
	}
	v := Volume{Name: name, Mountpoint: e.volumePath(name), CreatedAt: fi.ModTime(), Labels: map[string]string{}}
	if b, err := os.ReadFile(e.volumeLabelsPath(name)); err == nil {
		if err := json.Unmarshal(b, &v.Labels); err != nil {
			return Volume{}, fmt.Errorf("volume %s: %s: %w", name, e.volumeLabelsPath(name), err)
		}
	}
	return v, nil
}

// CreateVolume is `docker volume create`: a volume of the local driver,
// named at random when name is empty; an existing one is returned as it is.
func (e *Engine) CreateVolume(name, driver string, labels map[string]string) (Volume, error) {
	if driver != "" && driver != "local" {
		return Volume{}, fmt.Errorf("volume driver %q: only local exists: %w", driver, errdefs.ErrNotFound)
	}
	if name == "" {
		name = strings.TrimPrefix(randomName(), "berth_") + strings.TrimPrefix(randomName(), "berth_")
	}
	if _, err := e.ensureVolume(name, labels); err != nil {
		return Volume{}, err
	}
	v, err := e.InspectVolume(name)
	if err != nil {
		return Volume{}, err
	}
	e.events.publish("volume", "create", name, map[string]string{"driver": "local"})
	return v, nil
}

// Volumes lists the volumes filters match: by name (a part of it),
// label (each one asked for), dangling (used by no container or not) and
// driver, as dockerd's volume list reads them.
func (e *Engine) Volumes(filters Filters) ([]Volume, error) {
	for key := range filters {
		if !slices.Contains([]string{"name", "label", "dangling", "driver"}, key) {
			return nil, fmt.Errorf("invalid filter '%s': %w", key, errdefs.ErrInvalidArgument)
		}
	}
	used := e.volumesInUse()
	ents, _ := os.ReadDir(e.volumeDir)
	out := []Volume{}
	for _, ent := range ents {
		v, err := e.InspectVolume(ent.Name())
		if err != nil {
			continue
		}
		_, inUse := used[v.Name]
		if volumeMatches(v, inUse, filters) {
			out = append(out, v)
		}
	}
	return out, nil
}

func volumeMatches(v Volume, inUse bool, filters Filters) bool {
	if !labelsMatch(v.Labels, filters["label"]) {
		return false
	}
	for key, values := range filters {
		ok := key == "label"
		for _, want := range values {
			switch key {
			case "name":
				ok = ok || strings.Contains(v.Name, want)
			case "driver":
				ok = ok || want == "local"
			case "dangling":
				ok = ok || (want == "true" || want == "1") == !inUse
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// RemoveVolume is `docker volume rm`: it refuses a volume a container
// uses, as dockerd does.
func (e *Engine) RemoveVolume(name string) error {
	if _, err := e.InspectVolume(name); err != nil {
		return err
	}
	if cid, used := e.volumesInUse()[name]; used {
		return fmt.Errorf("remove %s: volume is in use - [%s]: %w", name, cid, errdefs.ErrFailedPrecondition)
	}
	if err := os.RemoveAll(filepath.Join(e.volumeDir, name)); err != nil {
		return err
	}
	e.events.publish("volume", "destroy", name, map[string]string{"driver": "local"})
	return nil
}

// anonymousVolumes makes a volume of its own for each path the request's
// Volumes (`-v /path`) or the image's VOLUME name that no bind, mount or
// tmpfs already covers, adds its mount to c, and returns "name:/path" for
// each, to be recorded.
func (e *Engine) anonymousVolumes(b Config, c *oci.ContainerConfig) ([]string, error) {
	paths := slices.Collect(maps.Keys(b.Volumes))
	paths = append(paths, slices.Collect(maps.Keys(e.imageConfig(b.Image).Volumes))...)
	slices.Sort(paths)
	var out []string
	for _, p := range slices.Compact(paths) {
		p = filepath.Clean(p)
		if !filepath.IsAbs(p) || slices.ContainsFunc(c.Mounts, func(m oci.Mount) bool { return filepath.Clean(m.ContainerPath) == p }) {
			continue
		}
		name := randomID()
		dir, err := e.ensureVolume(name, nil)
		if err != nil {
			e.removeVolumes(out)
			return nil, err
		}
		c.Mounts = append(c.Mounts, oci.Mount{ContainerPath: p, HostPath: dir, Propagation: "private"})
		out = append(out, name+":"+p)
	}
	return out, nil
}

// anonymousOf is what anonymousVolumes recorded for c.
func anonymousOf(c store.Container) []string {
	if v := c.Annotations[annotationAnonVolumes]; v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

// removeVolumes removes anonymous volumes ("name:/path").
func (e *Engine) removeVolumes(vols []string) {
	for _, v := range vols {
		name, _, _ := strings.Cut(v, ":")
		if volumeName.MatchString(name) {
			_ = os.RemoveAll(filepath.Join(e.volumeDir, name))
		}
	}
}

// volumesInUse maps each volume a Docker container uses to one such container.
func (e *Engine) volumesInUse() map[string]string {
	used := map[string]string{}
	all, _ := e.Containers()
	for _, c := range all {
		b := ConfigOf(c)
		for _, bind := range b.HostConfig.Binds {
			if src, _, _ := strings.Cut(bind, ":"); !filepath.IsAbs(src) {
				used[src] = c.ID
			}
		}
		for _, m := range b.HostConfig.Mounts {
			if m.Type == "volume" || m.Type == "" {
				used[m.Source] = c.ID
			}
		}
		for _, v := range anonymousOf(c) {
			name, _, _ := strings.Cut(v, ":")
			used[name] = c.ID
		}
	}
	return used
}

// PruneVolumes is `docker volume prune`: the anonymous volumes no container
// uses, or with all every unused volume (API 1.42's rule). It returns
// their names and the bytes they held.
func (e *Engine) PruneVolumes(all bool, labels []string) ([]string, uint64) {
	used := e.volumesInUse()
	ents, _ := os.ReadDir(e.volumeDir)
	deleted := []string{}
	var reclaimed uint64
	for _, ent := range ents {
		name := ent.Name()
		anonymous := len(name) == 64 && strings.Trim(name, "0123456789abcdef") == ""
		if _, inUse := used[name]; inUse || !all && !anonymous {
			continue
		}
		if v, err := e.InspectVolume(name); err != nil || !labelsMatch(v.Labels, labels) {
			continue
		}
		if u, err := dirUsage(filepath.Join(e.volumeDir, name)); err == nil {
			reclaimed += u
		}
		if err := os.RemoveAll(filepath.Join(e.volumeDir, name)); err == nil {
			deleted = append(deleted, name)
		}
	}
	return deleted, reclaimed
}

// dirUsage is the bytes a directory's files hold.
func dirUsage(dir string) (uint64, error) {
	var n uint64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += uint64(fi.Size())
			}
		}
		return nil
	})
	return n, err
}
