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

	"github.com/berth-runtime/berth/internal/mountinfo"
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

// LazyServed lists the lazy layers and whether each is served: its FUSE
// mount is in this namespace's mount table (read once for all) and the
// berth-lazyfs that serves it runs. It touches nothing on the mounts, which
// a server that hangs would leave hanging too.
func (s *Snapshotter) LazyServed() (map[digest.Digest]bool, error) {
	layers, err := s.LazyLayers()
	if err != nil || len(layers) == 0 {
		return nil, err
	}
	mounted := fuseMounts()
	out := make(map[digest.Digest]bool, len(layers))
	for _, c := range layers {
		out[c] = mounted[s.LayerPath(c)] && s.lazyServerPid(c) > 0
	}
	return out, nil
}

// lazyServerPid is the pid of the berth-lazyfs serving layer c, or 0.
func (s *Snapshotter) lazyServerPid(c digest.Digest) int {
	b, err := os.ReadFile(filepath.Join(s.LazyDir(c), "pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || !s.serves(pid, c) {
		return 0
	}
	return pid
}

// serves reports whether pid is a berth-lazyfs of layer c: a pid left by a
// server that ended may be another process's now, so only one whose
// command line names the layer's directory counts.
func (s *Snapshotter) serves(pid int, c digest.Digest) bool {
	cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.Contains(string(cmd), s.LazyDir(c))
}

// fuseMounts is the set of berth-lazyfs mount points (fuse.berth) in
// /proc/self/mountinfo.
func fuseMounts() map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		for i := 6; i+1 < len(f); i++ {
			if f[i] == "-" {
				if f[i+1] == "fuse.berth" {
					out[mountinfo.Unescape(f[4])] = true
				}
				break
			}
		}
	}
	return out
}

// UnmountLazy detaches layer c's mount, if any, and stops its server.
func (s *Snapshotter) UnmountLazy(c digest.Digest) {
	for unix.Unmount(s.LayerPath(c), unix.MNT_DETACH) == nil {
	}
	pid := s.lazyServerPid(c)
	if pid == 0 {
		return
	}
	// Gone first, so that berthd does not take the end it asks for for a loss.
	_ = os.Remove(filepath.Join(s.LazyDir(c), "pid"))
	_ = syscall.Kill(pid, syscall.SIGTERM)
	// It writes into the lazy directory until it ends: wait a little, so
	// that the directory's removal does not race its last writes.
	for i := 0; i < 200 && s.serves(pid, c); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}
