package images

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-runtime/berth/internal/store"
)

// Adopt records the image (or index) top, whose blobs another store on this
// filesystem holds at blobPath(d) — BuildKit's, after a build: every blob is
// linked into the content store rather than copied, then the image for this
// node is unpacked and recorded under tags, as an import is.
func (s *Service) Adopt(ctx context.Context, top ocispec.Descriptor, tags []string, blobPath func(digest.Digest) string) (store.Image, error) {
	start := time.Now()
	names := make([]string, 0, len(tags))
	for _, t := range tags {
		n, err := Normalize(t)
		if err != nil {
			return store.Image{}, err
		}
		names = append(names, n.String())
	}
	rec, err := func() (store.Image, error) {
		s.gcMu.RLock()
		defer s.gcMu.RUnlock()
		if err := s.linkTree(top, blobPath, 0); err != nil {
			return store.Image{}, err
		}
		m, err := s.platformManifest(top, 0)
		if err != nil {
			return store.Image{}, err
		}
		return s.importManifest(ctx, m, names)
	}()
	if err != nil {
		return store.Image{}, fmt.Errorf("adopt image %s: %w", top.Digest, err)
	}
	// The blobs of the index no image record holds (attestations) are garbage.
	s.gcMu.Lock()
	gcErr := s.gc()
	s.gcMu.Unlock()
	if gcErr != nil {
		return store.Image{}, fmt.Errorf("adopt image %s: %w", top.Digest, gcErr)
	}
	s.log.Info("built image", slog.String("id", rec.ID), slog.Any("tags", rec.RepoTags), slog.Duration("took", time.Since(start)))
	return rec, nil
}

// linkTree links desc's blob and every blob it names.
func (s *Service) linkTree(desc ocispec.Descriptor, blobPath func(digest.Digest) string, depth int) error {
	if depth > 4 {
		return fmt.Errorf("indexes nested too deep at %s", desc.Digest)
	}
	if err := s.content.Link(desc.Digest, blobPath(desc.Digest)); err != nil {
		return err
	}
	var children []ocispec.Descriptor
	switch types.MediaType(desc.MediaType) {
	case types.OCIImageIndex, types.DockerManifestList:
		raw, err := readBlob(s.content, desc.Digest, maxMetadataSize)
		if err != nil {
			return err
		}
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		children = idx.Manifests
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		raw, err := readBlob(s.content, desc.Digest, maxMetadataSize)
		if err != nil {
			return err
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		children = append([]ocispec.Descriptor{m.Config}, m.Layers...)
	}
	for _, c := range children {
		if err := s.linkTree(c, blobPath, depth+1); err != nil {
			return err
		}
	}
	return nil
}
