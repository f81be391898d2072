package containers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/images/snapshot"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/oci"
)

// imageVolumesDir holds a container's image volumes, mounted read-only:
// <container dir>/image-volumes/<n>.
const imageVolumesDir = "image-volumes"

// mountImageVolumes mounts each image volume of c (Kubernetes' image
// volumes: an OCI image as a read-only volume) under dir, and points its
// mount there, at its sub-path if it names one.
func (s *Service) mountImageVolumes(dir string, c *oci.ContainerConfig) error {
	for i := range c.Mounts {
		m := &c.Mounts[i]
		if m.Image == "" {
			continue
		}
		img, err := s.images.Resolve(m.Image)
		if err != nil {
			return fmt.Errorf("image volume %s: %w", m.ContainerPath, err)
		}
		base := filepath.Join(dir, imageVolumesDir, strconv.Itoa(i))
		target := filepath.Join(base, "mnt")
		if err := s.images.Snapshots().MountReadonly(images.ChainIDsOf(img), target, filepath.Join(base, "empty")); err != nil {
			return fmt.Errorf("image volume %s (%s): %w", m.ContainerPath, m.Image, err)
		}
		src := target
		if m.ImageSubPath != "" {
			// Inside the image whatever its symlinks say.
			if src, err = securejoin.SecureJoin(target, m.ImageSubPath); err != nil {
				return fmt.Errorf("image volume %s: sub-path %q: %w", m.ContainerPath, m.ImageSubPath, err)
			}
			if _, err := os.Stat(src); err != nil {
				return fmt.Errorf("image volume %s: sub-path %q is not in image %s: %w", m.ContainerPath, m.ImageSubPath, m.Image, errdefs.ErrInvalidArgument)
			}
		}
		m.HostPath, m.Readonly = src, true
	}
	return nil
}

// unmountImageVolumes unmounts what mountImageVolumes mounted under dir. It
// must run before dir is removed: the mounts are of the image's own layers.
func unmountImageVolumes(dir string) error {
	ents, err := os.ReadDir(filepath.Join(dir, imageVolumesDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if err := snapshot.UnmountAll(filepath.Join(dir, imageVolumesDir, e.Name(), "mnt")); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
