package dockerapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

func (s *Server) routeImages() {
	s.mux.HandleFunc("GET /images/json", s.listImages)
	s.mux.HandleFunc("GET /images/get", s.saveImages)
	s.mux.HandleFunc("POST /images/load", s.loadImages)
	s.mux.HandleFunc("POST /images/create", s.pullImage)
	s.mux.HandleFunc("GET /images/{name...}", s.imageByName)
	s.mux.HandleFunc("DELETE /images/{name...}", s.removeImage)
	s.mux.HandleFunc("POST /images/prune", s.pruneImages)
	s.mux.HandleFunc("POST /images/{name...}", s.imagePost)
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	all, err := s.images.List()
	if err != nil {
		writeError(w, err)
		return
	}
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []map[string]any{}
	for _, img := range all {
		if !imageMatches(img, filters) {
			continue
		}
		if refs := filters["reference"]; len(refs) > 0 {
			// Only the tags the filter named, as dockerd lists them.
			img.RepoTags = slices.DeleteFunc(img.RepoTags, func(t string) bool { return !referenceMatches(t, refs) })
			img.RepoDigests = slices.DeleteFunc(img.RepoDigests, func(d string) bool {
				repo, _, _ := strings.Cut(d, "@")
				return !referenceMatches(repo+":latest", refs)
			})
		}
		out = append(out, map[string]any{
			"Id": img.ID, "ParentId": "", "RepoTags": nonNil(img.RepoTags), "RepoDigests": nonNil(img.RepoDigests),
			"Created": img.CreatedAt.Unix(), "Size": img.Size, "SharedSize": -1, "Containers": -1, "Labels": imageLabels(img),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// pullImage is `docker pull`: the JSON-lines progress the CLI draws as
// progress bars, one line a layer, then the digest and the outcome. An
// error once the stream began is reported in it, as dockerd does.
func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ref := q.Get("fromImage")
	if ref == "" {
		writeError(w, fmt.Errorf("fromImage is required (docker import is not supported): %w", errdefs.ErrInvalidArgument))
		return
	}
	if tag := q.Get("tag"); tag != "" {
		sep := ":"
		if strings.HasPrefix(tag, "sha256:") {
			sep = "@"
		}
		ref += sep + tag
	}
	named, err := images.Normalize(ref)
	if err != nil {
		writeError(w, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	send := func(v map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(v)
		if flusher != nil {
			flusher.Flush()
		}
	}
	send(map[string]any{"status": "Pulling from " + strings.TrimPrefix(familiarName(named.String()), ""), "id": tagOf(named.String())})
	img, err := s.images.PullWith(r.Context(), ref, images.PullOptions{Auth: registryAuth(r), Progress: func(p images.Progress) {
		id := shortID(p.Layer.Encoded())
		if p.Complete {
			send(map[string]any{"status": "Pull complete", "progressDetail": map[string]any{}, "id": id})
			return
		}
		send(map[string]any{"status": "Downloading", "progressDetail": map[string]int64{"current": p.Done, "total": p.Total}, "id": id})
	}})
	if err != nil {
		send(map[string]any{"errorDetail": map[string]string{"message": err.Error()}, "error": err.Error()})
		return
	}
	if len(img.RepoDigests) > 0 {
		_, d, _ := strings.Cut(img.RepoDigests[0], "@")
		send(map[string]any{"status": "Digest: " + d})
	}
	send(map[string]any{"status": "Status: Image is up to date for " + familiarName(named.String())})
	s.events.publish("image", "pull", named.String(), map[string]string{"name": named.String()})
}

// imageByName routes GET /images/NAME/json (inspect) and /images/NAME/get
// (save of one image): a name may hold slashes.
func (s *Server) imageByName(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("name")
	if name, ok := strings.CutSuffix(p, "/get"); ok {
		s.save(w, r, []string{name})
		return
	}
	if name, ok := strings.CutSuffix(p, "/history"); ok {
		s.imageHistory(w, name)
		return
	}
	name, ok := strings.CutSuffix(p, "/json")
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.inspectImage(w, name)
}

// saveImages is `docker save`: one tar that is both a docker save archive
// and an OCI image layout.
func (s *Server) saveImages(w http.ResponseWriter, r *http.Request) {
	s.save(w, r, r.URL.Query()["names"])
}

func (s *Server) save(w http.ResponseWriter, r *http.Request, names []string) {
	for _, n := range names {
		if _, err := s.images.Resolve(n); err != nil {
			writeError(w, fmt.Errorf("No such image: %s: %w", n, errdefs.ErrNotFound))
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if err := s.images.Export(r.Context(), w, names...); err != nil {
		s.log.Warn("docker save", "images", names, "error", err)
	}
}

// loadImages is `docker load`: the archive in the body, a JSON line per
// image loaded (what the CLI prints).
func (s *Server) loadImages(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.images.Import(r.Context(), r.Body)
	if err != nil {
		writeError(w, fmt.Errorf("load: %v: %w", err, errdefs.ErrInvalidArgument))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, img := range imgs {
		if len(img.RepoTags) == 0 {
			_ = enc.Encode(map[string]string{"stream": "Loaded image ID: " + img.ID + "\n"})
		}
		for _, t := range img.RepoTags {
			_ = enc.Encode(map[string]string{"stream": "Loaded image: " + familiarName(t) + "\n"})
		}
	}
}

func (s *Server) inspectImage(w http.ResponseWriter, name string) {
	img, err := s.images.Resolve(name)
	if err != nil {
		writeError(w, fmt.Errorf("No such image: %s: %w", name, errdefs.ErrNotFound))
		return
	}
	cfg, _ := images.Config(img)
	writeJSON(w, http.StatusOK, map[string]any{
		"Id": img.ID, "RepoTags": nonNil(img.RepoTags), "RepoDigests": nonNil(img.RepoDigests),
		"Created": img.CreatedAt.UTC().Format("2006-01-02T15:04:05.999999999Z"), "Size": img.Size,
		"Architecture": cfg.Architecture, "Os": cfg.OS, "Author": cfg.Author,
		"Config": map[string]any{"Env": cfg.Config.Env, "Cmd": cfg.Config.Cmd, "Entrypoint": cfg.Config.Entrypoint,
			"WorkingDir": cfg.Config.WorkingDir, "User": cfg.Config.User, "Labels": cfg.Config.Labels, "StopSignal": cfg.Config.StopSignal},
		"RootFS": map[string]any{"Type": "layers", "Layers": img.Layers},
	})
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	img, err := s.images.Resolve(name)
	if err != nil {
		writeError(w, fmt.Errorf("No such image: %s: %w", name, errdefs.ErrNotFound))
		return
	}
	if err := s.images.Remove(r.Context(), name, s.containers.ImageInUse); err != nil {
		writeError(w, err)
		return
	}
	out := []map[string]string{{"Untagged": name}}
	if _, err := s.images.Resolve(img.ID); err != nil {
		out = append(out, map[string]string{"Deleted": img.ID}) // not only a tag of several
	}
	for _, o := range out {
		if o["Untagged"] != "" {
			s.events.publish("image", "untag", img.ID, map[string]string{"name": o["Untagged"]})
		} else {
			s.events.publish("image", "delete", img.ID, map[string]string{"name": img.ID})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// imageMatches is `docker images --filter` (and `docker images REPO`):
// reference (a glob over the familiar name, with or without its tag),
// dangling, label; every key must match, any of its values may.
func imageMatches(img store.Image, filters map[string][]string) bool {
	for key, values := range filters {
		ok := false
		for _, v := range values {
			switch key {
			case "reference":
				ok = ok || slices.ContainsFunc(img.RepoTags, func(t string) bool { return referenceMatches(t, []string{v}) })
			case "dangling":
				ok = ok || (v == "true" || v == "1") == (len(img.RepoTags) == 0)
			case "label":
				k, val, hasVal := strings.Cut(v, "=")
				got, has := imageLabels(img)[k]
				ok = ok || has && (!hasVal || got == val)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// referenceMatches: tag (a full reference) matches one of the globs, over
// its familiar name with or without the tag.
func referenceMatches(tag string, globs []string) bool {
	name := familiarName(tag)
	repo := strings.TrimSuffix(name, ":"+tagOf(name))
	for _, g := range globs {
		m1, _ := path.Match(g, name)
		m2, _ := path.Match(g, repo)
		if m1 || m2 {
			return true
		}
	}
	return false
}

func imageLabels(img store.Image) map[string]string {
	cfg, err := images.Config(img)
	if err != nil || cfg.Config.Labels == nil {
		return map[string]string{}
	}
	return cfg.Config.Labels
}

// familiarName is Docker's short form: docker.io/library/busybox:latest → busybox:latest.
func familiarName(full string) string {
	s := strings.TrimPrefix(full, "docker.io/")
	return strings.TrimPrefix(s, "library/")
}

func tagOf(full string) string {
	if i := strings.LastIndex(full, ":"); i > strings.LastIndex(full, "/") {
		return full[i+1:]
	}
	return "latest"
}

func shortID(hex string) string {
	if len(hex) > 12 {
		return hex[:12]
	}
	return hex
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
