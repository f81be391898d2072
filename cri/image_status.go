package cri

import (
	"context"
	"encoding/json"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/images"
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
		// The "info" key holds JSON, as containerd's does, for crictl inspecti.
		cfg, _ := images.Config(img)
		info, err := json.Marshal(map[string]any{
			"id": img.ID, "manifest": img.Manifest, "chainIDs": img.ChainIDs, "diffIDs": img.Layers,
			"size": img.Size, "pinned": img.Pinned, "created": img.CreatedAt, "imageSpec": cfg,
		})
		if err != nil {
			return nil, toStatus(err)
		}
		resp.Info = map[string]string{"info": string(info), "config": string(img.Config), "manifest": img.Manifest}
	}
	return resp, nil
}
