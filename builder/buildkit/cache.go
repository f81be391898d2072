package buildkit

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
)

// CacheRecord is one record of BuildKit's cache: a layer, a cache mount, a
// build context, as `docker system df -v` lists them.
type CacheRecord struct {
	ID          string
	Parents     []string
	Type        string
	Description string
	InUse       bool
	Shared      bool
	Size        int64
	CreatedAt   time.Time
	LastUsedAt  *time.Time
	UsageCount  int
}

// PruneOptions are `docker builder prune`'s.
type PruneOptions struct {
	// All removes what is in use by no build, not only what no image or
	// other record refers to.
	All bool
	// Until keeps what was used within it.
	Until time.Duration
	// ReservedSpace, MaxUsedSpace and MinFreeSpace bound what is removed:
	// the cache is pruned down to them, oldest first.
	ReservedSpace, MaxUsedSpace, MinFreeSpace int64
	// Filters are BuildKit's (containerd's filter syntax), all to match:
	// type=="regular", id~="^abc".
	Filters []string
}

// started is BuildKit if it ever ran here (its cache is on disk), held
// until release; nil without starting it when it never did: nothing is
// cached then.
func (s *Service) started(ctx context.Context) (*running, func(), error) {
	if _, err := os.Stat(s.cfg.Root); errors.Is(err, os.ErrNotExist) {
		return nil, func() {}, nil
	}
	return s.use(ctx)
}

// DiskUsage lists BuildKit's cache records; while it is stopped, those it
// had when it stopped (stoppedusage.go), without starting it.
func (s *Service) DiskUsage(ctx context.Context) ([]CacheRecord, error) {
	if recs, ok := s.stoppedUsage(); ok {
		return recs, nil
	}
	r, release, err := s.started(ctx)
	if r == nil || err != nil {
		return nil, err
	}
	defer release()
	infos, err := r.worker.DiskUsage(ctx, client.DiskUsageInfo{})
	if err != nil {
		return nil, err
	}
	out := make([]CacheRecord, 0, len(infos))
	for _, u := range infos {
		out = append(out, record(*u))
	}
	return out, nil
}

func record(u client.UsageInfo) CacheRecord {
	return CacheRecord{ID: u.ID, Parents: u.Parents, Type: string(u.RecordType), Description: u.Description, InUse: u.InUse,
		Shared: u.Shared, Size: u.Size, CreatedAt: u.CreatedAt, LastUsedAt: u.LastUsedAt, UsageCount: u.UsageCount}
}

// Prune removes cache records no build is using and returns them.
func (s *Service) Prune(ctx context.Context, o PruneOptions) ([]CacheRecord, error) {
	r, release, err := s.started(ctx)
	if r == nil || err != nil {
		return nil, err
	}
	defer release()
	ch := make(chan client.UsageInfo)
	done := make(chan []CacheRecord)
	go func() {
		var out []CacheRecord
		for u := range ch {
			out = append(out, record(u))
		}
		done <- out
	}()
	pi := client.PruneInfo{All: o.All, KeepDuration: o.Until, ReservedSpace: o.ReservedSpace, MaxUsedSpace: o.MaxUsedSpace, MinFreeSpace: o.MinFreeSpace}
	if len(o.Filters) > 0 {
		pi.Filter = []string{strings.Join(o.Filters, ",")}
	}
	err = r.worker.Prune(ctx, ch, pi)
	close(ch)
	out := <-done
	if err != nil {
		return out, err
	}
	// What the records held on disk goes with BuildKit's garbage collection.
	if err := r.worker.GarbageCollect(ctx); err != nil {
		return out, err
	}
	return out, nil
}
