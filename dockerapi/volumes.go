package dockerapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// Volumes of the local driver: a directory each under the root,
// <volumes>/<name>/_data (dockerd's layout), made on first use.

var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (s *Server) routeVolumes() {
	s.mux.HandleFunc("GET /volumes", s.listVolumes)
	s.mux.HandleFunc("POST /volumes/create", s.createVolume)
	s.mux.HandleFunc("GET /volumes/{name}", s.inspectVolume)
	s.mux.HandleFunc("DELETE /volumes/{name}", s.removeVolume)
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
	all, _ := s.containers.ListOwned(Owner)
	for _, c := range all {
		var b createBody
		_ = json.Unmarshal(c.Config, &b)
		for _, bind := range b.HostConfig.Binds {
			if src, _, _ := strings.Cut(bind, ":"); src == name {
				writeError(w, fmt.Errorf("remove %s: volume is in use - [%s]: %w", name, c.ID, errdefs.ErrFailedPrecondition))
				return
			}
		}
	}
	if err := os.RemoveAll(filepath.Join(s.volumeDir, name)); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
