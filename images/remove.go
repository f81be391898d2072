package images

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// InUse reports which container, if any, uses an image; the containers
// service provides it, so that images need not know about containers.
type InUse func(imageID string) (containerID string, used bool)

// Remove removes what ref names. A tag that is one of several on its image
// is untagged and the image kept (as `docker rmi` does); an image ID, a
// digest reference or an image's last tag removes the image, which fails
// while a container uses it. Layers and blobs no other image needs are then
// deleted. Removing a missing image is not an error (the CRI makes it idempotent).
func (s *Service) Remove(ctx context.Context, ref string, inUse InUse) error {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	img, err := s.Resolve(ref)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if named, err := Normalize(ref); err == nil && slices.Contains(img.RepoTags, named.String()) && len(img.RepoTags) > 1 {
		_, err := s.db.Images.Update(img.ID, func(r *store.Image) error {
			r.RepoTags = slices.DeleteFunc(r.RepoTags, func(t string) bool { return t == named.String() })
			return nil
		})
		return err
	}
	if inUse != nil {
		if cid, used := inUse(img.ID); used {
			return fmt.Errorf("image %s is used by container %s: %w", img.ID, cid, errdefs.ErrFailedPrecondition)
		}
	}
	if err := s.db.Images.Delete(img.ID); err != nil {
		return err
	}
	s.log.Info("removed image", slog.String("id", img.ID), slog.Any("tags", img.RepoTags))
	return s.gc()
}

// gc deletes layers and blobs that no image references. Call with gcMu held.
func (s *Service) gc() error {
	all, err := s.db.Images.List()
	if err != nil {
		return err
	}
	keepLayers, keepBlobs := map[string]bool{}, map[string]bool{}
	for _, img := range all {
		for _, c := range img.ChainIDs {
			keepLayers[digest.Digest(c).Encoded()] = true
		}
		for _, b := range img.Blobs {
			keepBlobs[b] = true
		}
	}
	var freed int
	var freedBytes int64
	defer func() {
		if s.hooks.Freed != nil && freedBytes > 0 {
			s.hooks.Freed(freedBytes)
		}
	}()
	layers, err := s.snapshots.Layers()
	if err != nil {
		return err
	}
	for _, c := range layers {
		if keepLayers[c.Encoded()] {
			continue
		}
		if err := s.snapshots.RemoveLayer(c); err != nil {
			return fmt.Errorf("gc: layer %s: %w", c, err)
		}
		freed++
	}
	blobs, err := s.content.List()
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if keepBlobs[b.String()] {
			continue
		}
		if size, err := s.content.Size(b); err == nil {
			freedBytes += size
		}
		if err := s.content.Delete(b); err != nil {
			return fmt.Errorf("gc: blob %s: %w", b, err)
		}
		freed++
	}
	if freed > 0 {
		s.log.Info("image garbage collected", slog.Int("layers and blobs", freed))
	}
	return nil
}
