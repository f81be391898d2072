package containers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/images/snapshot"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/idmap"
	"github.com/berth-runtime/berth/internal/store"
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

// idmappedVolumesDir holds the idmapped binds of a container's volumes in a
// pod with its own user namespace: <container dir>/idmapped-volumes/<n>.
const idmappedVolumesDir = "idmapped-volumes"

// mountIDMappedVolumes idmaps, through the pod's user namespace, each bind
// of c that asks for it, and points its mount at the idmapped bind (not
// recursive: filesystems below it may not take an idmap).
func mountIDMappedVolumes(dir string, sb store.Sandbox, c *oci.ContainerConfig) error {
	for i := range c.Mounts {
		m := &c.Mounts[i]
		if len(m.UIDMappings)+len(m.GIDMappings) == 0 {
			continue
		}
		if sb.Namespaces["user"] == "" {
			return fmt.Errorf("mount %s: ID mappings need a pod with a user namespace of its own: %w", m.ContainerPath, errdefs.ErrInvalidArgument)
		}
		if !slices.Equal(m.UIDMappings, specIDMaps(sb.UIDMappings)) || !slices.Equal(m.GIDMappings, specIDMaps(sb.GIDMappings)) {
			return fmt.Errorf("mount %s: ID mappings differ from the pod's: %w", m.ContainerPath, errdefs.ErrInvalidArgument)
		}
		fi, err := os.Stat(m.HostPath)
		if err != nil {
			return fmt.Errorf("mount %s: %w", m.ContainerPath, err)
		}
		target := filepath.Join(dir, idmappedVolumesDir, strconv.Itoa(i))
		if err := os.MkdirAll(filepath.Dir(target), 0o711); err != nil {
			return err
		}
		if fi.IsDir() {
			err = os.Mkdir(target, 0o755)
		} else {
			err = os.WriteFile(target, nil, 0o644)
		}
		if err != nil {
			return err
		}
		if err := idmap.Bind(m.HostPath, target, sb.Namespaces["user"]); err != nil {
			return fmt.Errorf("mount %s: %w", m.ContainerPath, err)
		}
		m.HostPath = target
	}
	return nil
}

// unmountVolumes unmounts what mountImageVolumes and mountIDMappedVolumes
// mounted under dir. It must run before dir is removed: the mounts are of
// the image's own layers and of the pod's volumes.
func unmountVolumes(dir string) error {
	var errs []error
	for _, sub := range []struct{ dir, mnt string }{{imageVolumesDir, "mnt"}, {idmappedVolumesDir, ""}} {
		ents, err := os.ReadDir(filepath.Join(dir, sub.dir))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range ents {
			if err := snapshot.UnmountAll(filepath.Join(dir, sub.dir, e.Name(), sub.mnt)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
