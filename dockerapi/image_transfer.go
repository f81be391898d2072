package dockerapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berth-runtime/berth/engine"
	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// Images in and out of the node: pull, push, save, load, login.

// registryAuth reads X-Registry-Auth: base64 (URL or standard alphabet) of
// Docker's AuthConfig JSON; nil when absent or unreadable.
func registryAuth(r *http.Request) *images.Auth {
	h := r.Header.Get("X-Registry-Auth")
	if h == "" {
		return nil
	}
	raw, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(h); err != nil {
			return nil
		}
	}
	var a struct {
		Username, Password, Auth, IdentityToken, RegistryToken string
	}
	if json.Unmarshal(raw, &a) != nil {
		return nil
	}
	return &images.Auth{Username: a.Username, Password: a.Password, Auth: a.Auth, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
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
	out := &jsonStream{w: w}
	var mu sync.Mutex // layers report at once
	send := func(v map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		out.send(v)
	}
	send(map[string]any{"status": "Pulling from " + engine.FamiliarName(named.String()), "id": engine.TagOf(named.String())})
	img, err := s.engine.Pull(r.Context(), ref, images.PullOptions{Auth: registryAuth(r), Progress: func(p images.Progress) {
		id := p.Layer.Encoded()
		if len(id) > 12 {
			id = id[:12]
		}
		if p.Complete {
			send(map[string]any{"status": "Pull complete", "progressDetail": map[string]any{}, "id": id})
			return
		}
		send(map[string]any{"status": "Downloading", "progressDetail": map[string]int64{"current": p.Done, "total": p.Total}, "id": id})
	}})
	if err != nil {
		out.sendError(err)
		return
	}
	if len(img.RepoDigests) > 0 {
		_, d, _ := strings.Cut(img.RepoDigests[0], "@")
		send(map[string]any{"status": "Digest: " + d})
	}
	send(map[string]any{"status": "Status: Image is up to date for " + engine.FamiliarName(named.String())})
}

// pushImage is `docker push`: POST /images/NAME/push?tag=, its outcome as
// the JSON stream the CLI prints.
func (s *Server) pushImage(w http.ResponseWriter, r *http.Request, name string) {
	ref := name
	if tag := r.URL.Query().Get("tag"); tag != "" {
		ref += ":" + tag
	}
	if _, err := s.engine.Image(ref); err != nil {
		writeError(w, fmt.Errorf("An image does not exist locally with the tag: %s: %w", ref, errdefs.ErrNotFound))
		return
	}
	named, err := images.Normalize(ref)
	if err != nil {
		writeError(w, err)
		return
	}
	out := &jsonStream{w: w}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	full := named.String()
	repo, tag := full, engine.TagOf(full)
	if i := strings.LastIndex(full, ":"); i > strings.LastIndex(full, "/") {
		repo = full[:i]
	}
	out.send(map[string]string{"status": "The push refers to repository [" + repo + "]"})
	var last time.Time
	progress := func(done, total int64) {
		if time.Since(last) < 100*time.Millisecond && done < total {
			return // a bar needs no more than ten redraws a second
		}
		last = time.Now()
		out.send(map[string]any{"status": "Pushing", "progressDetail": map[string]int64{"current": done, "total": total}, "id": tag})
	}
	d, size, err := s.engine.Push(r.Context(), ref, registryAuth(r), progress)
	if err != nil {
		out.sendError(err)
		return
	}
	out.send(map[string]any{"status": "Pushed", "progressDetail": map[string]any{}, "id": tag})
	out.send(map[string]string{"status": fmt.Sprintf("%s: digest: %s size: %d", tag, d, size)})
	out.send(map[string]any{"progressDetail": map[string]any{}, "aux": map[string]any{"Tag": tag, "Digest": d.String(), "Size": size}})
}

// saveImages is `docker save`: one tar that is both a docker save archive
// and an OCI image layout.
func (s *Server) saveImages(w http.ResponseWriter, r *http.Request) {
	s.save(w, r, r.URL.Query()["names"])
}

func (s *Server) save(w http.ResponseWriter, r *http.Request, names []string) {
	for _, n := range names {
		if _, err := s.engine.Image(n); err != nil {
			writeError(w, err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if err := s.engine.Save(r.Context(), w, names); err != nil {
		s.log.Warn("docker save", "images", names, "error", err)
	}
}

// loadImages is `docker load`: the archive in the body, a JSON line per
// image loaded (what the CLI prints).
func (s *Server) loadImages(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.engine.Load(r.Context(), r.Body)
	if err != nil {
		writeError(w, err)
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
			_ = enc.Encode(map[string]string{"stream": "Loaded image: " + engine.FamiliarName(t) + "\n"})
		}
	}
}

// login is `docker login`: the credentials checked against the registry.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var b struct{ Username, Password, Serveraddress, IdentityToken string }
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	if err := s.engine.Login(r.Context(), b.Serveraddress, &images.Auth{Username: b.Username, Password: b.Password, IdentityToken: b.IdentityToken}); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"Status": "Login Succeeded", "IdentityToken": ""})
}
