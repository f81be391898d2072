package containers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci"
)

// Update changes a running or created container's cgroup limits.
func (s *Service) Update(ctx context.Context, id string, r oci.Resources) error {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return err
	}
	if rec.State != store.ContainerRunning && rec.State != store.ContainerCreated {
		return fmt.Errorf("container %s is %s: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	b, err := json.Marshal(oci.LinuxResources(r))
	if err != nil {
		return err
	}
	if err := s.client(rec).Update(ctx, b); err != nil {
		return s.shimError(rec, "update", err)
	}
	return nil
}

// Rename gives container id a new name (Docker's rename). Names are unique
// among the containers of one owner: a name another of them has is refused.
func (s *Service) Rename(id, name string) error {
	if name == "" {
		return fmt.Errorf("rename %s: a name is required: %w", id, errdefs.ErrInvalidArgument)
	}
	s.renameMu.Lock()
	defer s.renameMu.Unlock()
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return err
	}
	all, err := s.ListOwned(rec.Owner)
	if err != nil {
		return err
	}
	for _, c := range all {
		if c.Name == name && c.ID != id {
			return fmt.Errorf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name: %w", "/"+name, c.ID, errdefs.ErrAlreadyExists)
		}
	}
	_, err = s.db.Containers.Update(id, func(c *store.Container) error {
		c.Name = name
		return nil
	})
	return err
}

// SetConfig replaces the front end's record of container id (Docker's
// update of a restart policy changes what its create request said).
func (s *Service) SetConfig(id string, config []byte) error {
	_, err := s.db.Containers.Update(id, func(c *store.Container) error {
		c.Config = config
		return nil
	})
	return err
}
