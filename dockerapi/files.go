package dockerapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/go-archive"
	"github.com/moby/go-archive/chrootarchive"
	"github.com/moby/go-archive/compression"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// The file endpoints: docker diff, export and cp. They are moby's archive
// code (the field's own, chroot-safe against symlinks that point out of
// the container) over the container's files as the containers service
// finds them.

func (s *Server) routeFiles() {
	s.mux.HandleFunc("GET /containers/{id}/changes", s.containerChanges)
	s.mux.HandleFunc("GET /containers/{id}/export", s.exportContainer)
	s.mux.HandleFunc("HEAD /containers/{id}/archive", s.statArchive)
	s.mux.HandleFunc("GET /containers/{id}/archive", s.getArchive)
	s.mux.HandleFunc("PUT /containers/{id}/archive", s.putArchive)
	s.mux.HandleFunc("POST /commit", s.commitContainer)
}

// containerChanges is `docker diff`.
func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	changes, err := s.containers.Changes(c.ID)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []map[string]any{}
	for _, ch := range changes {
		out = append(out, map[string]any{"Path": ch.Path, "Kind": ch.Kind})
	}
	writeJSON(w, http.StatusOK, out)
}

// exportContainer is `docker export`: the container's root file system
// (image and changes, not its volumes) as a tar stream.
func (s *Server) exportContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	root, err := s.containers.RootFS(c.ID)
	if err != nil {
		writeError(w, err)
		return
	}
	tr, err := archive.Tar(root, compression.None)
	if err != nil {
		writeError(w, fmt.Errorf("export %s: %w", c.Name, err))
		return
	}
	defer tr.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	_, _ = io.Copy(w, tr)
}

// containerPath resolves path in container id's files (symlinks followed
// inside them only), giving the root, the resolved host path and its Lstat.
func (s *Server) containerPath(r *http.Request) (root, hostPath string, fi os.FileInfo, err error) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		return "", "", nil, err
	}
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", "", nil, fmt.Errorf("path is required: %w", errdefs.ErrInvalidArgument)
	}
	if root, err = s.containers.FilesRoot(c.ID); err != nil {
		return "", "", nil, err
	}
	if !filepath.IsAbs(p) {
		p = "/" + p
	}
	// The last element is not followed if it is a link (docker cp copies
	// the link itself), its directory is.
	dir, base := filepath.Split(filepath.Clean(p))
	resolvedDir, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return "", "", nil, err
	}
	hostPath = filepath.Join(resolvedDir, base)
	if base == "" || base == "/" {
		hostPath = resolvedDir
	}
	fi, err = os.Lstat(hostPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", nil, fmt.Errorf("Could not find the file %s in container %s: %w", r.URL.Query().Get("path"), r.PathValue("id"), errdefs.ErrNotFound)
	}
	return root, hostPath, fi, err
}

// pathStat is the X-Docker-Container-Path-Stat header: base64 of JSON.
func pathStat(w http.ResponseWriter, root, hostPath string, fi os.FileInfo) {
	link := ""
	if fi.Mode()&os.ModeSymlink != 0 {
		link, _ = os.Readlink(hostPath)
	}
	b, _ := json.Marshal(map[string]any{"name": fi.Name(), "size": fi.Size(), "mode": uint32(fi.Mode()),
		"mtime": fi.ModTime().UTC().Format(time.RFC3339Nano), "linkTarget": link})
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
}

func (s *Server) statArchive(w http.ResponseWriter, r *http.Request) {
	root, hostPath, fi, err := s.containerPath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	pathStat(w, root, hostPath, fi)
	w.WriteHeader(http.StatusOK)
}

// getArchive is `docker cp CONTAINER:PATH ...`: a tar of the path, its
// top entry named as the path's last element.
func (s *Server) getArchive(w http.ResponseWriter, r *http.Request) {
	root, hostPath, fi, err := s.containerPath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	dir, base := archive.SplitPathDirEntry(hostPath)
	rebase := filepath.Base(filepath.Clean("/" + r.URL.Query().Get("path")))
	tr, err := chrootarchive.Tar(dir, archive.TarResourceRebaseOpts(base, rebase), root)
	if err != nil {
		writeError(w, fmt.Errorf("archive of %s: %w", r.URL.Query().Get("path"), err))
		return
	}
	defer tr.Close()
	pathStat(w, root, hostPath, fi)
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, tr)
}

// putArchive is `docker cp ... CONTAINER:PATH`: a tar unpacked into the
// directory path names, chrooted into the container's files.
func (s *Server) putArchive(w http.ResponseWriter, r *http.Request) {
	root, hostPath, fi, err := s.containerPath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if !fi.IsDir() {
		writeError(w, fmt.Errorf("extraction point is not a directory: %s: %w", r.URL.Query().Get("path"), errdefs.ErrInvalidArgument))
		return
	}
	opts := &archive.TarOptions{NoOverwriteDirNonDir: boolParam(r, "noOverwriteDirNonDir")}
	if !boolParam(r, "copyUIDGID") {
		// Files copied in belong to the container's root, as dockerd makes them.
		opts.ChownOpts = &archive.ChownOpts{UID: 0, GID: 0}
	}
	if err := chrootarchive.UntarWithRoot(r.Body, hostPath, opts, root); err != nil {
		writeError(w, fmt.Errorf("extract into %s: %v: %w", r.URL.Query().Get("path"), strings.TrimSpace(err.Error()), errdefs.ErrInvalidArgument))
		return
	}
	w.WriteHeader(http.StatusOK)
}
