package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// ImageStatus reports an image; an unknown image is an empty answer, not an
// error, as the CRI asks.
func (s *Server) ImageStatus(ctx context.Context, r *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := r.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("ImageStatus: image.image is required")
	}
	img, err := s.images.Resolve(ref)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &runtimeapi.ImageStatusResponse{Image: criImage(img)}
	if r.Verbose {
		resp.Info = map[string]string{"config": string(img.Config), "manifest": img.Manifest}
	}
	return resp, nil
}
