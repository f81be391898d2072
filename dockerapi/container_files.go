package dockerapi

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/berth-runtime/berth/engine"
)

// The file endpoints: docker diff, export, cp and commit.

// containerChanges is `docker diff`.
func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	changes, err := s.engine.Changes(c)
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

// exportContainer is `docker export`: the container's root file system as a tar.
func (s *Server) exportContainer(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	tr, err := s.engine.Export(c)
	if err != nil {
		writeError(w, err)
		return
	}
	defer tr.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	_, _ = io.Copy(w, tr)
}

// pathStat is the X-Docker-Container-Path-Stat header: base64 of JSON.
func pathStat(w http.ResponseWriter, st engine.PathStat) {
	b, _ := json.Marshal(map[string]any{"name": st.Name, "size": st.Size, "mode": uint32(st.Mode),
		"mtime": st.Mtime.UTC().Format(time.RFC3339Nano), "linkTarget": st.LinkTarget})
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
}

func (s *Server) statArchive(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	st, err := s.engine.StatPath(c, r.URL.Query().Get("path"))
	if err != nil {
		writeError(w, err)
		return
	}
	pathStat(w, st)
	w.WriteHeader(http.StatusOK)
}

// getArchive is `docker cp CONTAINER:PATH ...`.
func (s *Server) getArchive(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	tr, st, err := s.engine.ArchivePath(c, r.URL.Query().Get("path"))
	if err != nil {
		writeError(w, err)
		return
	}
	defer tr.Close()
	pathStat(w, st)
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, tr)
}

// putArchive is `docker cp ... CONTAINER:PATH`.
func (s *Server) putArchive(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	err := s.engine.Extract(c, r.URL.Query().Get("path"), r.Body, boolParam(r, "noOverwriteDirNonDir"), boolParam(r, "copyUIDGID"))
	answer(w, err, http.StatusOK)
}

// commitContainer is `docker commit [-c CHANGE] [-m MSG] [-a AUTHOR]
// CONTAINER [REPO[:TAG]]`.
func (s *Server) commitContainer(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := s.engine.Lookup(q.Get("container"))
	if err != nil {
		writeError(w, err)
		return
	}
	tag := q.Get("repo")
	if tag != "" && q.Get("tag") != "" {
		tag += ":" + q.Get("tag")
	}
	img, err := s.engine.Commit(r.Context(), c, engine.CommitRequest{Changes: q["changes"], Comment: q.Get("comment"), Author: q.Get("author"), Tag: tag})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"Id": img.ID})
}
