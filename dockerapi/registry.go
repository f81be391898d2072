package dockerapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
)

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

// pushImage is `docker push`: POST /images/NAME/push?tag=, its outcome as
// the JSON stream the CLI prints.
func (s *Server) pushImage(w http.ResponseWriter, r *http.Request, name string) {
	ref := name
	if tag := r.URL.Query().Get("tag"); tag != "" {
		ref += ":" + tag
	}
	if _, err := s.images.Resolve(ref); err != nil {
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
	repo, tag := full, "latest"
	if i := strings.LastIndex(full, ":"); i > strings.LastIndex(full, "/") {
		repo, tag = full[:i], full[i+1:]
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
	d, size, err := s.images.Push(context.WithoutCancel(r.Context()), ref, registryAuth(r), progress)
	if err != nil {
		msg := strings.TrimSuffix(err.Error(), ": "+errdefs.ErrUnauthenticated.Error())
		out.send(map[string]any{"errorDetail": map[string]string{"message": msg}, "error": msg})
		return
	}
	out.send(map[string]any{"status": "Pushed", "progressDetail": map[string]any{}, "id": tag})
	out.send(map[string]string{"status": fmt.Sprintf("%s: digest: %s size: %d", tag, d, size)})
	out.send(map[string]any{"progressDetail": map[string]any{}, "aux": map[string]any{"Tag": tag, "Digest": d.String(), "Size": size}})
}

// login is `docker login`: the credentials checked against the registry.
// berthd keeps none: the client stores them and sends them with each pull
// and push, as dockerd expects.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var b struct{ Username, Password, Serveraddress, IdentityToken string }
	if err := decodeBody(r, &b); err != nil {
		writeError(w, err)
		return
	}
	if err := s.images.Login(r.Context(), b.Serveraddress, &images.Auth{Username: b.Username, Password: b.Password, IdentityToken: b.IdentityToken}); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"Status": "Login Succeeded", "IdentityToken": ""})
}
