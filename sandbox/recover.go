package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/store"
)

// Recover runs when berthd starts, before it serves. A sandbox directory with
// no record is what a RunPodSandbox cut short by a crash left: its network
// attachment is torn down and its pinned namespaces and shm unmounted, then
// the directory goes. Ready sandboxes get their networking checked (CNI
// CHECK); one that fails is reported, and kubelet, seeing the pod's
// containers fail, recreates it. A stopped sandbox whose DEL did not finish
// is torn down again.
func (s *Service) Recover(ctx context.Context) error {
	recs, err := s.db.Sandboxes.List()
	if err != nil {
		return err
	}
	known := map[string]store.Sandbox{}
	for _, r := range recs {
		known[filepath.Base(r.Dir)] = r
	}
	ents, err := os.ReadDir(s.stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		dir := filepath.Join(s.stateDir, e.Name())
		rec, ok := known[e.Name()]
		switch {
		case !ok:
			s.log.Warn("removing a sandbox whose creation was interrupted", slog.String("sandbox", e.Name()))
			if err := s.sweep(ctx, dir); err != nil {
				errs = append(errs, err)
			}
		case rec.State == store.SandboxReady && fileExists(filepath.Join(dir, NetworkFile)):
			if err := s.checkNetwork(ctx, dir); err != nil {
				s.log.Warn("pod network check failed", slog.String("sandbox", rec.ID), slog.Any("error", err))
			}
		case rec.State != store.SandboxReady:
			if err := s.teardownNetwork(ctx, dir); err != nil {
				s.log.Warn("pod network teardown", slog.String("sandbox", rec.ID), slog.Any("error", err))
			}
		}
	}
	return errors.Join(errs...)
}

// sweep removes a sandbox directory that has no record: network first, then
// every mount under it (pinned namespaces, shm), then the files.
func (s *Service) sweep(ctx context.Context, dir string) error {
	if err := s.teardownNetwork(ctx, dir); err != nil {
		return fmt.Errorf("sweep %s: %w", dir, err)
	}
	if pid, start, ok := readPausePid(dir); ok {
		stopPause(pid, start)
	}
	mounts := []string{filepath.Join(dir, ShmDir)}
	if ns, err := os.ReadDir(filepath.Join(dir, "ns")); err == nil {
		for _, n := range ns {
			mounts = append(mounts, filepath.Join(dir, "ns", n.Name()))
		}
	}
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("sweep %s: unmount %s: %w", dir, m, err)
		}
	}
	return os.RemoveAll(dir)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
