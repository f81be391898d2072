package dockerapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// tagImage is `docker tag SOURCE TARGET`: POST /images/SOURCE/tag?repo=&tag=.
func (s *Server) tagImage(w http.ResponseWriter, r *http.Request, source string) {
	q := r.URL.Query()
	target := q.Get("repo")
	if target == "" {
		writeError(w, fmt.Errorf("repository name must have at least one component: %w", errdefs.ErrInvalidArgument))
		return
	}
	if tag := q.Get("tag"); tag != "" {
		target += ":" + tag
	}
	if _, err := s.images.Resolve(source); err != nil {
		writeError(w, fmt.Errorf("No such image: %s: %w", source, errdefs.ErrNotFound))
		return
	}
	if _, err := s.images.Tag(source, target); err != nil {
		writeError(w, err)
		return
	}
	s.events.publish("image", "tag", target, map[string]string{"name": target})
	w.WriteHeader(http.StatusCreated)
}

// imageHistory is `docker history`: the config's history, newest first,
// each entry that made a layer with that layer's unpacked size.
func (s *Server) imageHistory(w http.ResponseWriter, name string) {
	img, err := s.images.Resolve(name)
	if err != nil {
		writeError(w, fmt.Errorf("No such image: %s: %w", name, errdefs.ErrNotFound))
		return
	}
	cfg, err := images.Config(img)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []map[string]any{}
	layer := 0
	for _, h := range cfg.History {
		size := int64(0)
		if !h.EmptyLayer && layer < len(img.ChainIDs) {
			if u, err := s.images.Snapshots().LayerUsage(digest.Digest(img.ChainIDs[layer])); err == nil {
				size = int64(u.Bytes)
			}
			layer++
		}
		created := int64(0)
		if h.Created != nil {
			created = h.Created.Unix()
		}
		out = append(out, map[string]any{"Id": "<missing>", "Created": created, "CreatedBy": h.CreatedBy,
			"Tags": nil, "Size": size, "Comment": h.Comment})
	}
	slices.Reverse(out)
	if len(out) == 0 {
		out = append(out, map[string]any{"Created": img.CreatedAt.Unix(), "Size": img.Size})
	}
	out[0]["Id"], out[0]["Tags"] = img.ID, nonNil(img.RepoTags)
	writeJSON(w, http.StatusOK, out)
}

// pruneImages is `docker image prune`: images no container uses that have
// no tag (dangling), or with dangling=false any image no container uses.
func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	danglingOnly := !slices.Contains(filters["dangling"], "false") && !slices.Contains(filters["dangling"], "0")
	all, err := s.images.List()
	if err != nil {
		writeError(w, err)
		return
	}
	deleted := []map[string]string{}
	var reclaimed int64
	for _, img := range all {
		if img.Pinned || danglingOnly && len(img.RepoTags) > 0 {
			continue
		}
		if _, used := s.containers.ImageInUse(img.ID); used {
			continue
		}
		for _, t := range img.RepoTags {
			deleted = append(deleted, map[string]string{"Untagged": familiarName(t)})
		}
		if err := s.images.Remove(r.Context(), img.ID, s.containers.ImageInUse); err != nil {
			s.log.Warn("image prune", "image", img.ID, "error", err)
			continue
		}
		deleted = append(deleted, map[string]string{"Deleted": img.ID})
		reclaimed += img.Size
	}
	writeJSON(w, http.StatusOK, map[string]any{"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed})
}

// imagePost routes POST /images/NAME/tag and /images/NAME/push (a name may
// hold slashes).
func (s *Server) imagePost(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("name")
	if name, ok := strings.CutSuffix(p, "/tag"); ok {
		s.tagImage(w, r, name)
		return
	}
	if name, ok := strings.CutSuffix(p, "/push"); ok {
		s.pushImage(w, r, name)
		return
	}
	writeError(w, fmt.Errorf("page not found: %w", errdefs.ErrNotFound))
}
