package engine

import (
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// Docker's verbs on images, over the node's one image store (the CRI's
// too): what they publish as events, their filters, Docker's names.

// Image finds an image by reference, ID or short ID.
func (e *Engine) Image(ref string) (store.Image, error) {
	img, err := e.images.Resolve(ref)
	if err != nil {
		return store.Image{}, fmt.Errorf("No such image: %s: %w", ref, errdefs.ErrNotFound)
	}
	return img, nil
}

// ImageConfig is img's config (empty when it cannot be read).
func ImageConfig(img store.Image) ocispec.Image {
	cfg, _ := images.Config(img)
	return cfg
}

// Images lists the images that match filters (`docker images --filter`);
// with a reference filter only the tags it names are listed, as dockerd does.
func (e *Engine) Images(filters Filters) ([]store.Image, error) {
	all, err := e.images.List()
	if err != nil {
		return nil, err
	}
	out := []store.Image{}
	for _, img := range all {
		if !ImageMatches(img, filters) {
			continue
		}
		if refs := filters["reference"]; len(refs) > 0 {
			img.RepoTags = slices.DeleteFunc(img.RepoTags, func(t string) bool { return !referenceMatches(t, refs) })
			img.RepoDigests = slices.DeleteFunc(img.RepoDigests, func(d string) bool {
				repo, _, _ := strings.Cut(d, "@")
				return !referenceMatches(repo+":latest", refs)
			})
		}
		out = append(out, img)
	}
	return out, nil
}

// Pull is `docker pull`, reporting each layer's progress.
func (e *Engine) Pull(ctx context.Context, ref string, o images.PullOptions) (store.Image, error) {
	img, err := e.images.PullWith(ctx, ref, o)
	if err != nil {
		return img, err
	}
	if named, err := images.Normalize(ref); err == nil {
		e.events.publish("image", "pull", named.String(), map[string]string{"name": named.String()})
	}
	return img, nil
}

// Tag is `docker tag SOURCE TARGET`.
func (e *Engine) Tag(source, target string) error {
	if _, err := e.Image(source); err != nil {
		return err
	}
	if _, err := e.images.Tag(source, target); err != nil {
		return err
	}
	e.events.publish("image", "tag", target, map[string]string{"name": target})
	return nil
}

// RemoveImage is `docker rmi NAME`: the tag (or the image, named by ID);
// the image goes with its last tag unless a container uses it. It returns
// what went as dockerd lists it: {"Untagged": name}, then {"Deleted": id}.
func (e *Engine) RemoveImage(ctx context.Context, name string) ([]map[string]string, error) {
	img, err := e.Image(name)
	if err != nil {
		return nil, err
	}
	if err := e.images.Remove(ctx, name, e.containers.ImageInUse); err != nil {
		return nil, err
	}
	e.events.publish("image", "untag", img.ID, map[string]string{"name": name})
	out := []map[string]string{{"Untagged": name}}
	if _, err := e.images.Resolve(img.ID); err != nil { // not only a tag of several
		out = append(out, map[string]string{"Deleted": img.ID})
		e.events.publish("image", "delete", img.ID, map[string]string{"name": img.ID})
	}
	return out, nil
}

// PruneImages is `docker image prune`: images no container uses that have
// no tag (dangling), or with danglingOnly false any image no container
// uses. It returns what went, as RemoveImage, and the bytes reclaimed.
func (e *Engine) PruneImages(ctx context.Context, danglingOnly bool) ([]map[string]string, int64, error) {
	all, err := e.images.List()
	if err != nil {
		return nil, 0, err
	}
	deleted := []map[string]string{}
	var reclaimed int64
	for _, img := range all {
		if img.Pinned || danglingOnly && len(img.RepoTags) > 0 {
			continue
		}
		if _, used := e.containers.ImageInUse(img.ID); used {
			continue
		}
		for _, t := range img.RepoTags {
			deleted = append(deleted, map[string]string{"Untagged": FamiliarName(t)})
		}
		if err := e.images.Remove(ctx, img.ID, e.containers.ImageInUse); err != nil {
			e.log.Warn("image prune", "image", img.ID, "error", err)
			continue
		}
		deleted = append(deleted, map[string]string{"Deleted": img.ID})
		reclaimed += img.Size
	}
	return deleted, reclaimed, nil
}

// HistoryEntry is one of `docker history`'s rows.
type HistoryEntry struct {
	ID, CreatedBy, Comment string
	Created, Size          int64
	Tags                   []string
}

// History is `docker history`: the config's history, newest first, each
// entry that made a layer with that layer's unpacked size.
func (e *Engine) History(name string) ([]HistoryEntry, error) {
	img, err := e.Image(name)
	if err != nil {
		return nil, err
	}
	cfg, err := images.Config(img)
	if err != nil {
		return nil, err
	}
	var out []HistoryEntry
	layer := 0
	for _, h := range cfg.History {
		ent := HistoryEntry{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment}
		if !h.EmptyLayer && layer < len(img.ChainIDs) {
			if u, err := e.images.Snapshots().LayerUsage(digest.Digest(img.ChainIDs[layer])); err == nil {
				ent.Size = int64(u.Bytes)
			}
			layer++
		}
		if h.Created != nil {
			ent.Created = h.Created.Unix()
		}
		out = append(out, ent)
	}
	slices.Reverse(out)
	if len(out) == 0 {
		out = append(out, HistoryEntry{Created: img.CreatedAt.Unix(), Size: img.Size})
	}
	out[0].ID, out[0].Tags = img.ID, nonNil(img.RepoTags)
	return out, nil
}

// Save is `docker save`: one tar that is both a docker save archive and
// an OCI image layout.
func (e *Engine) Save(ctx context.Context, w io.Writer, names []string) error {
	for _, n := range names {
		if _, err := e.Image(n); err != nil {
			return err
		}
	}
	return e.images.Export(ctx, w, names...)
}

// Load is `docker load`.
func (e *Engine) Load(ctx context.Context, r io.Reader) ([]store.Image, error) {
	imgs, err := e.images.Import(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("load: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return imgs, nil
}

// Push is `docker push`: the stored image to its registry, never a
// mirror. It carries on when the client goes away.
func (e *Engine) Push(ctx context.Context, ref string, auth *images.Auth, progress func(done, total int64)) (digest.Digest, int64, error) {
	return e.images.Push(context.WithoutCancel(ctx), ref, auth, progress)
}

// Login is `docker login`: the credentials checked against the registry.
// berthd keeps none: the client stores them and sends them with each pull
// and push, as dockerd expects.
func (e *Engine) Login(ctx context.Context, server string, auth *images.Auth) error {
	return e.images.Login(ctx, server, auth)
}

// ImageMatches is `docker images --filter` (and `docker images REPO`):
// reference (a glob over the familiar name, with or without its tag),
// dangling, label; every key must match, any of its values may.
func ImageMatches(img store.Image, filters Filters) bool {
	for key, values := range filters {
		if key == "label" {
			// Every label asked for, as dockerd's filters.MatchKVList.
			if !labelsMatch(ImageLabels(img), values) {
				return false
			}
			continue
		}
		ok := false
		for _, v := range values {
			switch key {
			case "reference":
				ok = ok || slices.ContainsFunc(img.RepoTags, func(t string) bool { return referenceMatches(t, []string{v}) })
			case "dangling":
				ok = ok || (v == "true" || v == "1") == (len(img.RepoTags) == 0)
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
	name := FamiliarName(tag)
	repo := strings.TrimSuffix(name, ":"+TagOf(name))
	for _, g := range globs {
		m1, _ := path.Match(g, name)
		m2, _ := path.Match(g, repo)
		if m1 || m2 {
			return true
		}
	}
	return false
}

// ImageLabels are img's config's labels (never nil).
func ImageLabels(img store.Image) map[string]string {
	cfg, err := images.Config(img)
	if err != nil || cfg.Config.Labels == nil {
		return map[string]string{}
	}
	return cfg.Config.Labels
}

// FamiliarName is Docker's short form: docker.io/library/busybox:latest → busybox:latest.
func FamiliarName(full string) string {
	if n, err := reference.ParseNormalizedNamed(full); err == nil {
		return reference.FamiliarString(n)
	}
	return full
}

// FamiliarNames are refs as dockerd lists an image's RepoTags and
// RepoDigests: familiar, never null.
func FamiliarNames(refs []string) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, FamiliarName(r))
	}
	return out
}

// TagOf is a reference's tag ("latest" without one).
func TagOf(full string) string {
	if i := strings.LastIndex(full, ":"); i > strings.LastIndex(full, "/") {
		return full[i+1:]
	}
	return "latest"
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
