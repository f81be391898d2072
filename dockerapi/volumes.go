package dockerapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci"
)

// Volumes of the local driver: a directory each under the root,
// <volumes>/<name>/_data (dockerd's layout), made on first use.

var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (s *Server) routeVolumes() {
	s.mux.HandleFunc("GET /volumes", s.listVolumes)
	s.mux.HandleFunc("POST /volumes/create", s.createVolume)
	s.mux.HandleFunc("GET /volumes/{name}", s.inspectVolume)
	s.mux.HandleFunc("DELETE /volumes/{name}", s.removeVolume)
	s.mux.HandleFunc("POST /volumes/prune", s.pruneVolumes)
}

func (s *Server) volumePath(name string) string { return filepath.Join(s.volumeDir, name, "_data") }

// ensureVolume makes volume name if it is not there yet.
func (s *Server) ensureVolume(name string) (string, error) {
	if !volumeName.MatchString(name) {
		return "", fmt.Errorf("volume name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	p := s.volumePath(name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	return p, nil
}

func (s *Server) volumeJSON(name string) (map[string]any, error) {
	fi, err := os.Stat(s.volumePath(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"Name": name, "Driver": "local", "Mountpoint": s.volumePath(name), "Scope": "local",
		"CreatedAt": fi.ModTime().UTC().Format(time.RFC3339), "Labels": map[string]string{}, "Options": map[string]string{}}, nil
}

func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) {
	var b struct{ Name, Driver string }
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	if b.Driver != "" && b.Driver != "local" {
		writeError(w, fmt.Errorf("volume driver %q: only local exists: %w", b.Driver, errdefs.ErrNotFound))
		return
	}
	if b.Name == "" {
		b.Name = strings.TrimPrefix(randomName(), "berth_") + strings.TrimPrefix(randomName(), "berth_")
	}
	if _, err := s.ensureVolume(b.Name); err != nil {
		writeError(w, err)
		return
	}
	v, err := s.volumeJSON(b.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	s.events.publish("volume", "create", b.Name, map[string]string{"driver": "local"})
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) {
	ents, _ := os.ReadDir(s.volumeDir)
	vols := []map[string]any{}
	for _, e := range ents {
		if v, err := s.volumeJSON(e.Name()); err == nil {
			vols = append(vols, v)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"Volumes": vols, "Warnings": []string{}})
}

func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request) {
	v, err := s.volumeJSON(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// removeVolume refuses a volume a container uses, as dockerd does.
func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.volumeJSON(name); err != nil {
		writeError(w, err)
		return
	}
	if cid, used := s.volumesInUse()[name]; used {
		writeError(w, fmt.Errorf("remove %s: volume is in use - [%s]: %w", name, cid, errdefs.ErrFailedPrecondition))
		return
	}
	if err := os.RemoveAll(filepath.Join(s.volumeDir, name)); err != nil {
		writeError(w, err)
		return
	}
	s.events.publish("volume", "destroy", name, map[string]string{"driver": "local"})
	w.WriteHeader(http.StatusNoContent)
}

// anonymousVolumes makes a volume of its own for each path the request's
// Volumes (`-v /path`) or the image's VOLUME name that no bind, mount or
// tmpfs already covers, adds its mount to c, and returns "name:/path" for
// each, to be recorded.
func (s *Server) anonymousVolumes(b createBody, c *oci.ContainerConfig) ([]string, error) {
	paths := slices.Collect(maps.Keys(b.Volumes))
	if img, err := s.images.Resolve(b.Image); err == nil {
		if cfg, err := images.Config(img); err == nil {
			paths = append(paths, slices.Collect(maps.Keys(cfg.Config.Volumes))...)
		}
	}
	slices.Sort(paths)
	var out []string
	for _, p := range slices.Compact(paths) {
		p = filepath.Clean(p)
		if !filepath.IsAbs(p) || slices.ContainsFunc(c.Mounts, func(m oci.Mount) bool { return filepath.Clean(m.ContainerPath) == p }) {
			continue
		}
		name := randomID()
		dir, err := s.ensureVolume(name)
		if err != nil {
			s.removeVolumes(out)
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
func (s *Server) removeVolumes(vols []string) {
	for _, v := range vols {
		name, _, _ := strings.Cut(v, ":")
		if volumeName.MatchString(name) {
			_ = os.RemoveAll(filepath.Join(s.volumeDir, name))
		}
	}
}

// volumesInUse maps each volume a Docker container uses to one such container.
func (s *Server) volumesInUse() map[string]string {
	used := map[string]string{}
	all, _ := s.containers.ListOwned(Owner)
	for _, c := range all {
		var b createBody
		_ = json.Unmarshal(c.Config, &b)
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

// pruneVolumes is `docker volume prune`: the anonymous volumes no container
// uses, or with all=true every unused volume (API 1.42's rule).
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	all := slices.Contains(filters["all"], "true") || slices.Contains(filters["all"], "1")
	used := s.volumesInUse()
	ents, _ := os.ReadDir(s.volumeDir)
	deleted := []string{}
	var reclaimed uint64
	for _, e := range ents {
		name := e.Name()
		anonymous := len(name) == 64 && strings.Trim(name, "0123456789abcdef") == ""
		if _, inUse := used[name]; inUse || !all && !anonymous {
			continue
		}
		if u, err := dirUsage(filepath.Join(s.volumeDir, name)); err == nil {
			reclaimed += u
		}
		if err := os.RemoveAll(filepath.Join(s.volumeDir, name)); err == nil {
			deleted = append(deleted, name)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed})
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
