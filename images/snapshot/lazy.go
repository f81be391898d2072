package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// A lazy layer (images/lazy) is a FUSE mount at its layer path, served by a
// berth-lazyfs process whose configuration, caches and pid file live in
// root/lazy/<chain ID>.

// LazyDir is the directory of the lazy layer with chain ID c.
func (s *Snapshotter) LazyDir(c digest.Digest) string {
	return filepath.Join(s.root, "lazy", c.Encoded())
}

// IsLazy reports whether the layer with chain ID c is mounted lazily.
func (s *Snapshotter) IsLazy(c digest.Digest) bool {
	_, err := os.Stat(s.LazyDir(c))
	return err == nil
}

// LazyLayers lists the lazy layers' chain IDs.
func (s *Snapshotter) LazyLayers() ([]digest.Digest, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "lazy"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, e := range ents {
		if d := digest.NewDigestFromEncoded(digest.SHA256, e.Name()); d.Validate() == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// LazyMounted reports whether layer c's FUSE mount is there and answered:
// a mount whose server died fails its stat with ENOTCONN.
func (s *Snapshotter) LazyMounted(c digest.Digest) bool {
	var fs unix.Statfs_t
	return unix.Statfs(s.LayerPath(c), &fs) == nil && fs.Type == unix.FUSE_SUPER_MAGIC
}

// UnmountLazy detaches layer c's mount, if any, and stops its server.
func (s *Snapshotter) UnmountLazy(c digest.Digest) {
	for unix.Unmount(s.LayerPath(c), unix.MNT_DETACH) == nil {
	}
	b, err := os.ReadFile(filepath.Join(s.LazyDir(c), "pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	// Only if the pid is still a berth-lazyfs serving this layer: a pid
	// left by a server that ended may be another process's now.
	serving := func() bool {
		cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		return strings.Contains(string(cmd), s.LazyDir(c))
	}
	if !serving() {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	// It writes into the lazy directory until it ends: wait a little, so
	// that the directory's removal does not race its last writes.
	for i := 0; i < 200 && serving(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}
