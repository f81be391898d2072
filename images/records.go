package images

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// ChainIDs computes the layers' chain IDs from their diff IDs, bottom first.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

func toStrings(ds []digest.Digest) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// record merges rec into the store: a tag that named another image moves to rec.
func (s *Service) record(rec store.Image) (store.Image, error) {
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	all, err := s.db.Images.List()
	if err != nil {
		return rec, err
	}
	for _, other := range all {
		if other.ID == rec.ID {
			rec.RepoTags = union(other.RepoTags, rec.RepoTags)
			rec.RepoDigests = union(other.RepoDigests, rec.RepoDigests)
			rec.CreatedAt = other.CreatedAt
			rec.Pinned = other.Pinned
			continue
		}
		kept := slices.DeleteFunc(slices.Clone(other.RepoTags), func(t string) bool { return slices.Contains(rec.RepoTags, t) })
		if len(kept) != len(other.RepoTags) {
			other.RepoTags = kept
			if err := s.db.Images.Put(other.ID, other); err != nil {
				return rec, err
			}
		}
	}
	for _, p := range s.pinned {
		if slices.Contains(rec.RepoTags, p) || slices.Contains(rec.RepoDigests, p) {
			rec.Pinned = true
		}
	}
	return rec, s.db.Images.Put(rec.ID, rec)
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// List returns every image.
func (s *Service) List() ([]store.Image, error) { return s.db.Images.List() }

// Resolve finds the image ref names: an image ID (sha256:..., or its hex), a
// tag or a digest reference, normalised as Docker does.
func (s *Service) Resolve(ref string) (store.Image, error) {
	if ref == "" {
		return store.Image{}, fmt.Errorf("empty image reference: %w", errdefs.ErrInvalidArgument)
	}
	id := ref
	if !strings.HasPrefix(id, "sha256:") && len(id) == 64 {
		id = "sha256:" + id
	}
	if img, err := s.db.Images.Get(id); err == nil {
		return img, nil
	}
	all, err := s.db.Images.List()
	if err != nil {
		return store.Image{}, err
	}
	if named, err := Normalize(ref); err == nil {
		want := named.String()
		for _, img := range all {
			if slices.Contains(img.RepoTags, want) || slices.Contains(img.RepoDigests, want) {
				return img, nil
			}
		}
	}
	// A short ID (docker build prints 12 digits), when no name matched: the
	// one image whose ID begins so.
	if hex := strings.TrimPrefix(ref, "sha256:"); len(hex) >= 4 && strings.Trim(hex, "0123456789abcdef") == "" {
		var found []store.Image
		for _, img := range all {
			if strings.HasPrefix(img.ID, "sha256:"+hex) {
				found = append(found, img)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
	}
	return store.Image{}, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
}

// Config decodes an image's OCI config.
func Config(img store.Image) (ocispec.Image, error) {
	var c ocispec.Image
	if err := json.Unmarshal(img.Config, &c); err != nil {
		return c, fmt.Errorf("image %s: config: %w", img.ID, err)
	}
	return c, nil
}

// ChainIDsOf returns an image's chain IDs as digests.
func ChainIDsOf(img store.Image) []digest.Digest {
	out := make([]digest.Digest, len(img.ChainIDs))
	for i, c := range img.ChainIDs {
		out[i] = digest.Digest(c)
	}
	return out
}
