package containers

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
)

// Stats is what a container has used: its cgroup's CPU and memory, and its
// writable layer on disk.
type Stats struct {
	At time.Time
	linux.CgroupUsage
	// LayerBytes and LayerInodes are the writable layer's usage; LayerRoot
	// is where the writable layers live (the filesystem kubelet watches).
	LayerBytes, LayerInodes uint64
	LayerRoot               string
	// NanoCores is the CPU rate since the previous Stats of the container
	// (HasRate false for the first).
	NanoCores uint64
	HasRate   bool
	// FsBytes, FsInodes and FsInodesFree are the size of the filesystem
	// holding LayerRoot, the limit of what a writable layer may use.
	FsBytes, FsInodes, FsInodesFree uint64
}

// Stats reads the usage now of the container rec records (from Get or List).
// A container that is not running has no cgroup left: its CPU and memory are zero.
func (s *Service) Stats(rec store.Container) (Stats, error) { return s.stats(rec, false, false) }

// ListedStats is Stats for one of a list of every container's (kubelet's
// ListContainerStats): a writable layer measured within layerUsageFresh is
// not measured again, as in PodsStats.
func (s *Service) ListedStats(rec store.Container) (Stats, error) { return s.stats(rec, false, true) }

// StatsFull is Stats with every counter the cgroup has (for metrics).
func (s *Service) StatsFull(rec store.Container) (Stats, error) { return s.stats(rec, true, false) }

// stats reads rec's usage; with reuse, its writable layer's measure may be
// one made within layerUsageFresh (the lists of every pod's stats).
func (s *Service) stats(rec store.Container, full, reuse bool) (Stats, error) {
	id := rec.ID
	st := Stats{At: time.Now(), LayerRoot: s.images.Snapshots().Root()}
	if path, err := cgroupsPath(rec); err == nil {
		if u, err := s.statFiles.CgroupStats(path, full); err == nil {
			st.CgroupUsage = u
			st.NanoCores, st.HasRate = s.cpu.rate(id, st.At, u.CPUNanos)
		}
	}
	measure := s.images.Snapshots().WritableUsage
	if !reuse {
		s.layers.forget(id)
	}
	u, err := s.layers.get(id, st.At, measure)
	if err != nil {
		return st, fmt.Errorf("stats of container %s: %w", id, err)
	}
	st.LayerBytes, st.LayerInodes = u.Bytes, u.Inodes
	var fs unix.Statfs_t
	if unix.Statfs(st.LayerRoot, &fs) == nil {
		st.FsBytes, st.FsInodes, st.FsInodesFree = fs.Blocks*uint64(fs.Bsize), fs.Files, fs.Ffree
	}
	return st, nil
}
