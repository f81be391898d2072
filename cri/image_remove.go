package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemoveImage removes an image by ID, tag or digest; one tag of several only
// untags. An image a container uses is refused (FailedPrecondition); an
// unknown one is not an error.
func (s *Server) RemoveImage(ctx context.Context, r *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := r.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("RemoveImage: image.image is required")
	}
	if err := s.images.Remove(ctx, ref, s.containers.ImageInUse); err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}
