package containers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci"
	"github.com/berth-runtime/berth/oci/linux"
)

// Update changes a running or created container's cgroup limits, with
// NRI plugins' say on them.
func (s *Service) Update(ctx context.Context, id string, r oci.Resources) error {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return err
	}
	if rec.State != store.ContainerRunning && rec.State != store.ContainerCreated {
		return fmt.Errorf("container %s is %s: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	lr := oci.LinuxResources(r)
	if !s.cfg.NRI.Active() {
		return s.updateResources(ctx, rec, lr)
	}
	sb, c := s.nriPod(rec.SandboxID), s.nriContainer(rec)
	if lr, err = s.cfg.NRI.UpdateContainer(ctx, sb, c, lr); err != nil {
		return fmt.Errorf("update container %s: %w", id, err)
	}
	if err := s.updateResources(ctx, rec, lr); err != nil {
		return err
	}
	s.cfg.NRI.PostUpdateContainer(ctx, sb, c)
	return nil
}

// updateResources applies r to the container's cgroup through its shim.
func (s *Service) updateResources(ctx context.Context, rec store.Container, r *specs.LinuxResources) error {
	var limit int64
	if r.Memory != nil && r.Memory.Limit != nil {
		limit = *r.Memory.Limit
	}
	if err := checkMemory("container "+rec.ID, limit, func() (uint64, error) {
		st, err := s.Stats(rec)
		return st.WorkingSet, err
	}); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.client(rec).Update(ctx, b); err != nil {
		return s.shimError(rec, "update", err)
	}
	return nil
}

// UpdatePod applies a pod's resources (its containers' sum with the pod's
// overhead) to the pod's cgroup: the pod half of kubelet's in-place
// resize. A pod without a cgroup of its own has nothing to change.
func (s *Service) UpdatePod(ctx context.Context, sandboxID string, r oci.Resources) error {
	sb, err := s.sandboxes.Get(sandboxID)
	if err != nil {
		return err
	}
	if sb.State != store.SandboxReady {
		return fmt.Errorf("pod %s is %s: %w", sb.ID, sb.State, errdefs.ErrFailedPrecondition)
	}
	if sb.CgroupParent == "" {
		return nil
	}
	if err := checkMemory("pod "+sb.ID, r.MemoryLimit, func() (uint64, error) {
		u, err := linux.CgroupStats(sb.CgroupParent, false)
		return u.WorkingSet, err
	}); err != nil {
		return err
	}
	lr := oci.LinuxResources(r)
	if err := s.cfg.NRI.UpdatePod(ctx, sb, nil, lr); err != nil {
		return fmt.Errorf("resize pod %s: %w", sb.ID, err)
	}
	if err := linux.SetCgroupResources(sb.CgroupParent, lr); err != nil {
		return fmt.Errorf("resize pod %s: %w", sb.ID, err)
	}
	s.cfg.NRI.PostUpdatePod(ctx, sb)
	return nil
}

// checkMemory refuses a memory limit below what what uses now (its working
// set, which the kernel cannot reclaim): applied, it would OOM-kill the
// container, or on cgroup v1 fail with EBUSY after the CPU was changed.
func checkMemory(what string, limit int64, usage func() (uint64, error)) error {
	if limit <= 0 {
		return nil
	}
	used, err := usage()
	if err != nil || used <= uint64(limit) {
		return nil // nothing to weigh: the cgroup is not there (a created container)
	}
	return fmt.Errorf("memory limit %d bytes is below the %d bytes %s uses now: %w", limit, used, what, errdefs.ErrFailedPrecondition)
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
