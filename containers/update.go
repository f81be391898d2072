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
