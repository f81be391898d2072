package containers

import (
	"context"
	"fmt"
	"syscall"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// Kill sends sig to a running container's process (`docker kill`); its
// exit, if it dies of it, is recorded as any other.
func (s *Service) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	defer s.lock(id)()
	rec, err := s.running(id)
	if err != nil {
		return err
	}
	if err := s.client(rec).Kill(ctx, sig, false); err != nil {
		return s.shimError(rec, "signal", err)
	}
	return nil
}

// Pause freezes every process of a running container; Resume thaws them.
func (s *Service) Pause(ctx context.Context, id string) error  { return s.setPaused(ctx, id, true) }
func (s *Service) Resume(ctx context.Context, id string) error { return s.setPaused(ctx, id, false) }

func (s *Service) setPaused(ctx context.Context, id string, on bool) error {
	defer s.lock(id)()
	rec, err := s.running(id)
	if err != nil {
		return err
	}
	if rec.Paused == on {
		return fmt.Errorf("container %s is already %s: %w", id, map[bool]string{true: "paused", false: "not paused"}[on], errdefs.ErrFailedPrecondition)
	}
	c := s.client(rec)
	call, what := c.Resume, "resume"
	if on {
		call, what = c.Pause, "pause"
	}
	if err := call(ctx); err != nil {
		return s.shimError(rec, what, err)
	}
	_, err = s.db.Containers.Update(id, func(c *store.Container) error { c.Paused = on; return nil })
	return err
}

func (s *Service) running(id string) (store.Container, error) {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return rec, err
	}
	if rec.State != store.ContainerRunning {
		return rec, fmt.Errorf("container %s is %s, not running: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	return rec, nil
}
