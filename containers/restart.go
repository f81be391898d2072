package containers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/runtimecli"
	"github.com/berth-runtime/berth/shim"
)

// Restart runs an exited container again in place, as `docker start` of an
// exited container and Docker's restart policies do: the same ID, root
// filesystem (its writable layer kept), spec and log, with a new runtime
// container and shim. It returns once the container runs.
func (s *Service) Restart(ctx context.Context, id string) error {
	if err := s.recreate(ctx, id); err != nil {
		return err
	}
	return s.Start(ctx, id)
}

func (s *Service) recreate(ctx context.Context, id string) error {
	defer s.lock(id)()
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return err
	}
	if rec.State != store.ContainerExited && rec.State != store.ContainerUnknown {
		return fmt.Errorf("container %s is %s, not exited: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	// The old runtime container and shim go first: the new ones take their names.
	if err := s.client(rec).Delete(ctx); err != nil && !errors.Is(err, shim.ErrShimGone) {
		s.log.Debug("restart: shim delete", slog.String("container", id), slog.Any("error", err))
	}
	rt := runtimecli.Runtime{Path: rec.Runtime, Root: rec.RuntimeRoot}
	_ = rt.Delete(ctx, id, true)
	_ = os.Remove(filepath.Join(rec.Dir, shim.ExitFile))
	b, err := os.ReadFile(filepath.Join(rec.Dir, shim.ConfigFile))
	if err != nil {
		return fmt.Errorf("restart container %s: %w", id, err)
	}
	var cfg shim.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("restart container %s: %s: %w", id, shim.ConfigFile, err)
	}
	client, err := shim.Spawn(ctx, s.cfg.Spawner, s.cfg.ShimPath, rec.Dir, cfg)
	if err != nil {
		return fmt.Errorf("restart container %s: %w", id, err)
	}
	st, err := client.State(ctx)
	if err != nil {
		_ = client.Delete(context.WithoutCancel(ctx))
		return err
	}
	rec, err = s.db.Containers.Update(id, func(c *store.Container) error {
		c.State, c.Pid, c.ExitCode, c.Reason, c.Message = store.ContainerCreated, st.Pid, 0, "", ""
		c.StartedAt, c.FinishedAt = time.Time{}, time.Time{}
		c.RestartCount++
		return nil
	})
	if err != nil {
		return err
	}
	s.monitor(rec)
	return nil
}
