package buildkit

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/berth-runtime/berth/internal/atomicfile"
)

// While BuildKit is stopped nothing changes its cache, so what it held when
// it stopped is what `docker system df` shows: answered from a file, without
// starting BuildKit (its worker, databases and ~100 MB) for a listing. The
// file goes before BuildKit starts again, so a berthd killed while it ran
// leaves none: the next df starts BuildKit and asks it.

func (s *Service) usageFile() string { return filepath.Join(s.cfg.Root, "stopped-usage.json") }

// keepUsage records r's cache records as it stops; s.mu is held. With a
// build in flight (berthd shutting down) the start-up sweep may change the
// cache before BuildKit runs again: nothing is kept then.
func (s *Service) keepUsage(r *running) {
	file := s.usageFile()
	if s.users > 0 {
		_ = os.Remove(file)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	infos, err := r.worker.DiskUsage(ctx, client.DiskUsageInfo{})
	if err != nil {
		s.log.Warn("BuildKit's cache usage at stop", "error", err)
		_ = os.Remove(file)
		return
	}
	recs := make([]CacheRecord, 0, len(infos))
	for _, u := range infos {
		recs = append(recs, record(*u))
	}
	b, err := json.Marshal(recs)
	if err == nil {
		err = atomicfile.Write(file, b, 0o600)
	}
	if err != nil {
		s.log.Warn("BuildKit's cache usage at stop", "error", err)
		_ = os.Remove(file)
	}
}

// stoppedUsage is the usage kept at the last stop, while BuildKit is not
// running; false when it runs or nothing was kept.
func (s *Service) stoppedUsage() ([]CacheRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running != nil {
		return nil, false
	}
	b, err := os.ReadFile(s.usageFile())
	if err != nil {
		return nil, false
	}
	var recs []CacheRecord
	if json.Unmarshal(b, &recs) != nil {
		return nil, false
	}
	return recs, true
}

// forgetUsage drops the kept usage as BuildKit starts; s.mu is held.
func (s *Service) forgetUsage() error {
	if err := os.Remove(s.usageFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
