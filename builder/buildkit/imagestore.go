package buildkit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containerd/containerd/v2/core/images"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	bimages "github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// imageStore shows BuildKit Berth's images: what FROM resolves first
// (before any registry), as dockerd's builder does.
type imageStore struct {
	images *bimages.Service
}

func (s imageStore) Get(ctx context.Context, name string) (images.Image, error) {
	img, err := s.images.Resolve(name)
	if errdefs.IsNotFound(err) {
		return images.Image{}, fmt.Errorf("image %q: %w", name, cerrdefs.ErrNotFound)
	}
	if err != nil {
		return images.Image{}, err
	}
	desc, err := s.manifest(img)
	if err != nil {
		return images.Image{}, err
	}
	return images.Image{Name: name, Target: desc, CreatedAt: img.CreatedAt, UpdatedAt: img.CreatedAt}, nil
}

// manifest is the descriptor of img's manifest, read from Berth's store.
func (s imageStore) manifest(img store.Image) (ocispec.Descriptor, error) {
	d := digest.Digest(img.Manifest)
	rc, err := s.images.Blobs().Open(d)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("image %s: manifest %s: %w", img.ID, d, cerrdefs.ErrNotFound)
	}
	defer rc.Close()
	var m struct {
		MediaType string `json:"mediaType"`
	}
	n, err := s.images.Blobs().Size(d)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("image %s: manifest %s: %w", img.ID, d, err)
	}
	if m.MediaType == "" {
		m.MediaType = ocispec.MediaTypeImageManifest
	}
	return ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: n}, nil
}

func (s imageStore) List(ctx context.Context, filters ...string) ([]images.Image, error) {
	if len(filters) > 0 {
		return nil, fmt.Errorf("image filters: %w", cerrdefs.ErrNotImplemented)
	}
	all, err := s.images.List()
	if err != nil {
		return nil, err
	}
	var out []images.Image
	for _, img := range all {
		desc, err := s.manifest(img)
		if err != nil {
			continue
		}
		for _, t := range img.RepoTags {
			out = append(out, images.Image{Name: t, Target: desc, CreatedAt: img.CreatedAt, UpdatedAt: img.CreatedAt})
		}
	}
	return out, nil
}

// Create and Update are the image exporter naming what it made: the names
// are Berth's when the export returns (exporter.go adopts the image under
// them), so here there is nothing to do. Saying yes keeps the exporter's
// other duty for a stored image: fetching any base layer still lazy.
func (s imageStore) Create(_ context.Context, img images.Image) (images.Image, error) {
	return img, nil
}

func (s imageStore) Update(_ context.Context, img images.Image, _ ...string) (images.Image, error) {
	return img, nil
}

func (s imageStore) Delete(context.Context, string, ...images.DeleteOpt) error {
	return fmt.Errorf("BuildKit does not remove Berth's images: %w", cerrdefs.ErrNotImplemented)
}
