package buildkit

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Sweep removes what a berthd killed mid-build left of its RUN steps: the
// step's container, which the runtime keeps running when its `run` parent
// dies (killed, then deleted), the root filesystem mounted for it and its
// bundle. The steps' pods go with the other build pods (RemoveOwnedPods);
// the cache and the images already built stay. Call it before BuildKit
// starts (berthd's start): then no step is running.
func (s *Service) Sweep(ctx context.Context) {
	dir := filepath.Join(s.cfg.Root, "executor")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		s.log.Warn("buildkit: sweep", slog.Any("error", err))
		return
	}
	for _, e := range ents {
		bundle := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(bundle, "config.json")); err != nil {
			continue
		}
		// The runtime's own state root: BuildKit names none either.
		out, err := exec.CommandContext(ctx, s.cfg.RuntimePath, "delete", "--force", e.Name()).CombinedOutput()
		if err != nil {
			s.log.Debug("buildkit: sweep: delete a step's container", slog.String("id", e.Name()), slog.String("output", string(out)))
		}
		rootfs := filepath.Join(bundle, "rootfs")
		for i := 0; i < 10 && unix.Unmount(rootfs, unix.MNT_DETACH) == nil; i++ {
		}
		if err := os.RemoveAll(bundle); err != nil {
			s.log.Warn("buildkit: sweep: remove a step's bundle", slog.String("bundle", bundle), slog.Any("error", err))
			continue
		}
		s.log.Info("buildkit: removed a RUN step a crash cut short", slog.String("id", e.Name()))
	}
}
