package images

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/internal/store"
)

// CommitOptions describe the image a commit makes.
type CommitOptions struct {
	// Layer opens an uncompressed tar of the new layer (read more than
	// once); nil makes no layer, only a new config (a build's ENV, CMD...).
	Layer func() (io.ReadCloser, error)
	// CreatedBy and Comment go into the new history entry; Author into the config.
	CreatedBy, Comment, Author string
	// Config, if set, changes the new image's config (docker commit --change).
	Config func(*v1.Config) error
	// Tag names the new image ("" for none).
	Tag string
}

// Commit makes a new image of base (an image ID or reference) with one more
// layer on top, as docker commit does, stores it and returns its record.
func (s *Service) Commit(ctx context.Context, base string, o CommitOptions) (store.Image, error) {
	rec, err := s.Resolve(base)
	if err != nil {
		return store.Image{}, err
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	si, _, err := loadStoredImage(s.content, digest.Digest(rec.Manifest))
	if err != nil {
		return store.Image{}, fmt.Errorf("commit on %s: %w", rec.ID, err)
	}
	img, err := si.image()
	if err != nil {
		return store.Image{}, err
	}
	now := time.Now().UTC()
	history := v1.History{Created: v1.Time{Time: now}, CreatedBy: o.CreatedBy, Comment: o.Comment, Author: o.Author}
	if o.Layer != nil {
		layer, err := tarball.LayerFromOpener(o.Layer)
		if err != nil {
			return store.Image{}, fmt.Errorf("commit: the new layer: %w", err)
		}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: history}); err != nil {
			return store.Image{}, fmt.Errorf("commit: %w", err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return store.Image{}, err
	}
	cf = cf.DeepCopy()
	if o.Layer == nil {
		history.EmptyLayer = true
		cf.History = append(cf.History, history)
	}
	cf.Created, cf.Author = v1.Time{Time: now}, o.Author
	if o.Config != nil {
		if err := o.Config(&cf.Config); err != nil {
			return store.Image{}, err
		}
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return store.Image{}, err
	}
	var tags []string
	if o.Tag != "" {
		named, err := Normalize(o.Tag)
		if err != nil {
			return store.Image{}, err
		}
		tags = []string{named.String()}
	}
	out, err := s.ingest(ctx, img, nil, tags, nil, newProgress(nil))
	if err != nil {
		return store.Image{}, fmt.Errorf("commit: %w", err)
	}
	s.log.Info("committed image", slog.String("id", out.ID), slog.String("base", rec.ID), slog.Any("tags", tags))
	return out, nil
}
