package images

import (
	"fmt"

	"github.com/distribution/reference"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// Tag gives the image source names a new tag, target ("name" or
// "name:tag", normalised as Docker does); a tag that named another image
// moves to this one.
func (s *Service) Tag(source, target string) (store.Image, error) {
	img, err := s.Resolve(source)
	if err != nil {
		return img, err
	}
	named, err := Normalize(target)
	if err != nil {
		return img, fmt.Errorf("invalid reference format %q: %w", target, errdefs.ErrInvalidArgument)
	}
	if _, isDigest := named.(reference.Digested); isDigest {
		return img, fmt.Errorf("refusing to create a tag with a digest reference: %s: %w", target, errdefs.ErrInvalidArgument)
	}
	img.RepoTags = []string{named.String()}
	img.RepoDigests = nil
	return s.record(img)
}
