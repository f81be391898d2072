package cri

import (
	"context"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/store"
)

// ListImages lists images, optionally only the one the filter names.
func (s *Server) ListImages(ctx context.Context, r *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	var recs []store.Image
	if ref := r.GetFilter().GetImage().GetImage(); ref != "" {
		img, err := s.images.Resolve(ref)
		if err == nil {
			recs = append(recs, img)
		}
	} else {
		var err error
		if recs, err = s.images.List(); err != nil {
			return nil, toStatus(err)
		}
	}
	out := make([]*runtimeapi.Image, 0, len(recs))
	for _, rec := range recs {
		out = append(out, criImage(rec))
	}
	return &runtimeapi.ListImagesResponse{Images: out}, nil
}

// criImage describes an image; its user is reported as kubelet expects: a
// numeric uid, or else a username.
func criImage(rec store.Image) *runtimeapi.Image {
	img := &runtimeapi.Image{
		Id: rec.ID, RepoTags: rec.RepoTags, RepoDigests: rec.RepoDigests, Size: uint64(rec.Size),
		Spec: &runtimeapi.ImageSpec{Image: rec.ID}, Pinned: rec.Pinned,
	}
	if cfg, err := images.Config(rec); err == nil && cfg.Config.User != "" {
		user, _, _ := strings.Cut(cfg.Config.User, ":")
		if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
			img.Uid = &runtimeapi.Int64Value{Value: uid}
		} else {
			img.Username = user
		}
	}
	return img
}
