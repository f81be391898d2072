package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/images"
)

// PullImage pulls an image; the answer is its ID (sha256:<config digest>).
func (s *Server) PullImage(ctx context.Context, r *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := r.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("PullImage: image.image is required")
	}
	var auth *images.Auth
	if a := r.GetAuth(); a != nil {
		auth = &images.Auth{Username: a.Username, Password: a.Password, Auth: a.Auth,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	}
	img, err := s.images.Pull(ctx, ref, auth)
	if err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
}
