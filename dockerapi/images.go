package dockerapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/berth-runtime/berth/engine"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// The image routes; pulls, pushes, save, load and login are in
// image_transfer.go.
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

// imageByName routes GET /images/NAME/json (inspect), /images/NAME/get
// (save of one image) and /images/NAME/history: a name may hold slashes.
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

// listImages is `docker images`.
func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	imgs, err := s.engine.Images(filters)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []map[string]any{}
	for _, img := range imgs {
		out = append(out, map[string]any{
			"Id": img.ID, "ParentId": "", "RepoTags": engine.FamiliarNames(img.RepoTags), "RepoDigests": engine.FamiliarNames(img.RepoDigests),
			"Created": img.CreatedAt.Unix(), "Size": img.Size, "SharedSize": -1, "Containers": -1, "Labels": engine.ImageLabels(img),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) inspectImage(w http.ResponseWriter, name string) {
	img, err := s.engine.Image(name)
	if err != nil {
		writeError(w, err)
		return
	}
	cfg := engine.ImageConfig(img)
	writeJSON(w, http.StatusOK, map[string]any{
		"Id": img.ID, "RepoTags": engine.FamiliarNames(img.RepoTags), "RepoDigests": engine.FamiliarNames(img.RepoDigests),
		"Created": img.CreatedAt.UTC().Format("2006-01-02T15:04:05.999999999Z"), "Size": img.Size,
		"Architecture": cfg.Architecture, "Os": cfg.OS, "Author": cfg.Author,
		"Config": map[string]any{"Env": cfg.Config.Env, "Cmd": cfg.Config.Cmd, "Entrypoint": cfg.Config.Entrypoint,
			"WorkingDir": cfg.Config.WorkingDir, "User": cfg.Config.User, "Labels": cfg.Config.Labels, "StopSignal": cfg.Config.StopSignal},
		"RootFS": map[string]any{"Type": "layers", "Layers": img.Layers},
	})
}

// removeImage is `docker rmi`.
func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) {
	out, err := s.engine.RemoveImage(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

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
	answer(w, s.engine.Tag(source, target), http.StatusCreated)
}

// imageHistory is `docker history`.
func (s *Server) imageHistory(w http.ResponseWriter, name string) {
	hist, err := s.engine.History(name)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []map[string]any{}
	for i, h := range hist {
		m := map[string]any{"Id": h.ID, "Created": h.Created, "CreatedBy": h.CreatedBy, "Tags": nil, "Size": h.Size, "Comment": h.Comment}
		if i == 0 {
			m["Tags"] = h.Tags
		}
		out = append(out, m)
	}
	writeJSON(w, http.StatusOK, out)
}

// pruneImages is `docker image prune [-a]`.
func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	danglingOnly := !slices.Contains(filters["dangling"], "false") && !slices.Contains(filters["dangling"], "0")
	deleted, reclaimed, err := s.engine.PruneImages(r.Context(), danglingOnly)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed})
}
