package buildkit

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/moby/buildkit/util/db/boltutil"
	bolt "go.etcd.io/bbolt"
)

// cacheIndex is the containerd metadata database of BuildKit's snapshots,
// blobs and leases; cacheParts are what it indexes, with BuildKit's records
// of them.
const cacheIndex = "containerdmeta.db"

var cacheParts = []string{cacheIndex, "metadata_v2.db", "snapshots", "content"}

// openCacheIndex opens the cache's index without syncing its commits:
// BuildKit commits it some 280 times in an 8-step build, and the files of
// the snapshots it indexes are never synced either, so syncing the index
// would not make a power cut keep a usable cache, only every build slower
// (~590 → ~490 ms here). A killed berthd loses nothing (the page cache holds
// the writes). An index a power cut damaged is not patched up: the whole
// cache goes and BuildKit starts an empty one, since BuildKit's records of
// the cache would name snapshots the index no longer has and fail the next
// builds that hit them. Built images are Berth's, in its own synced store.
func (s *Service) openCacheIndex(root string) (*boltutil.DB, error) {
	path := filepath.Join(root, cacheIndex)
	opts := &bolt.Options{FreelistType: bolt.FreelistMapType, NoFreelistSync: true, NoSync: true}
	db, err := openIndex(path, opts)
	if err == nil {
		return db, nil
	}
	if st, statErr := os.Stat(path); statErr != nil || st.Size() == 0 {
		return nil, fmt.Errorf("buildkit cache index %s: %w", path, err)
	}
	s.log.Warn("buildkit: the build cache's index is damaged (a power cut?); the cache starts empty",
		slog.String("index", path), slog.Any("error", err))
	for _, p := range cacheParts {
		if rmErr := os.RemoveAll(filepath.Join(root, p)); rmErr != nil {
			return nil, fmt.Errorf("buildkit: remove the damaged cache: %w", rmErr)
		}
	}
	if db, err = openIndex(path, opts); err != nil {
		return nil, fmt.Errorf("buildkit cache index %s: %w", path, err)
	}
	return db, nil
}

// openIndex is boltutil.Open, with bbolt's panics on some damaged files
// made errors.
func openIndex(path string, opts *bolt.Options) (db *boltutil.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("open %s: %v", path, r)
		}
	}()
	return boltutil.Open(path, 0o600, opts)
}
