package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
)

// Recover runs when berthd starts, before it serves. A sandbox directory with
// no record is what a RunPodSandbox cut short by a crash left: its network
// attachment is torn down, its pinned namespaces and shm unmounted and its
// pod cgroup removed, then the directory goes. The pods that have records
// are left to CheckNetworks, which runs once berthd serves.
func (s *Service) Recover(ctx context.Context) error {
	_, err := s.walk(ctx, true)
	return err
}

// CheckNetworks runs behind serving, after Recover: ready sandboxes get
// their networking checked (CNI CHECK), a few at a time; one that fails is
// reported, and kubelet, seeing the pod's containers fail, recreates it.
// A stopped sandbox whose DEL did not finish is torn down again. A plugin
// run costs tens of milliseconds: a node of a hundred pods would otherwise
// wait seconds for its first answer.
func (s *Service) CheckNetworks(ctx context.Context) {
	start := time.Now()
	todo, _ := s.walk(ctx, false)
	defer func() {
		s.log.Info("pod networks checked", slog.Int("pods", len(todo)), slog.Duration("took", time.Since(start)))
	}()
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, f := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f()
		}()
	}
	wg.Wait()
}

// walk visits the sandbox directories: with sweep, it removes those with no
// record; without, it returns the network checks and teardowns of those with one.
func (s *Service) walk(ctx context.Context, sweep bool) ([]func(), error) {
	recs, err := s.db.Sandboxes.List()
	if err != nil {
		return nil, err
	}
	known := map[string]store.Sandbox{}
	for _, r := range recs {
		known[filepath.Base(r.Dir)] = r
	}
	ents, err := os.ReadDir(s.stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var errs []error
	var todo []func()
	for _, e := range ents {
		dir := filepath.Join(s.stateDir, e.Name())
		rec, ok := known[e.Name()]
		switch {
		case !ok && sweep:
			s.log.Warn("removing a sandbox whose creation was interrupted", slog.String("sandbox", e.Name()))
			if err := s.sweep(ctx, dir); err != nil {
				errs = append(errs, err)
			}
		case !ok || sweep:
		case rec.State == store.SandboxReady && fileExists(filepath.Join(dir, NetworkFile)):
			todo = append(todo, func() {
				if err := s.checkNetwork(ctx, dir); err != nil {
					s.log.Warn("pod network check failed", slog.String("sandbox", rec.ID), slog.Any("error", err))
				}
			})
		case rec.State != store.SandboxReady:
			todo = append(todo, func() {
				if err := s.teardownNetwork(ctx, dir); err != nil {
					s.log.Warn("pod network teardown", slog.String("sandbox", rec.ID), slog.Any("error", err))
				}
			})
		}
	}
	return todo, errors.Join(errs...)
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
	// A pause started just before the crash, whose pid file was not written
	// yet: found by the command line it was given.
	for _, pid := range pausesOf(dir) {
		stopPause(pid, 0)
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
	if b, err := os.ReadFile(filepath.Join(dir, cgroupFile)); err == nil {
		if err := linux.RemoveCgroup(string(b)); err != nil {
			return fmt.Errorf("sweep %s: pod cgroup %s: %w", dir, b, err)
		}
	}
	return os.RemoveAll(dir)
}

// pausesOf lists the processes that are berth-runtime's pause for dir.
func pausesOf(dir string) []int {
	want := "berth-pause\x00" + dir + "\x00"
	return linux.ProcessesMatching(func(c string) bool { return c == want })
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
