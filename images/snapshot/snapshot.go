// Package snapshot keeps unpacked image layers, one directory per chain ID,
// and mounts containers' root filesystems: those layers as overlayfs lower
// directories under a writable upper directory of the container's own.
package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/idmap"
)

// Snapshotter owns root/layers, root/containers and root/tmp.
type Snapshotter struct {
	root string
}

// New opens (creating) a snapshotter in root, dropping half-unpacked layers.
func New(root string) (*Snapshotter, error) {
	for _, d := range []string{"layers", "containers", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("snapshots: %w", err)
		}
	}
	if err := os.RemoveAll(filepath.Join(root, "tmp")); err != nil {
		return nil, fmt.Errorf("snapshots: clear tmp: %w", err)
	}
	if err := os.Mkdir(filepath.Join(root, "tmp"), 0o700); err != nil {
		return nil, err
	}
	spreadDirectories(filepath.Join(root, "tmp"))
	return &Snapshotter{root: root}, nil
}

// fsTopdirFl is FS_TOPDIR_FL (chattr +T), which x/sys/unix does not name.
const fsTopdirFl = 0x00020000

// spreadDirectories marks dir, where layers are unpacked, as the top of
// directory hierarchies (chattr +T): ext4 then places each new layer
// directory, and so its files, in a block group of its own choosing rather
// than beside its parent — beside the inodes of the image just removed,
// whose every recently freed slot ext4's allocator inspects (and skips)
// before it hands out an inode: that made a pull after a removal up to half
// again as slow. Best effort: other filesystems ignore or refuse the flag.
func spreadDirectories(dir string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return
	}
	_ = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|fsTopdirFl))
}

// LayerPath is where the layer with chain ID c is unpacked.
func (s *Snapshotter) LayerPath(c digest.Digest) string {
	return filepath.Join(s.root, "layers", c.Encoded())
}

// HasLayer reports whether the layer with chain ID c is unpacked or
// mounted lazily (its server said it serves: the pid file is written then).
// A lazy one is not looked at: its mount is its server's, and a server
// that hangs would hang the look.
func (s *Snapshotter) HasLayer(c digest.Digest) bool {
	if s.IsLazy(c) {
		_, err := os.Stat(filepath.Join(s.LazyDir(c), "pid"))
		return err == nil
	}
	_, err := os.Stat(s.LayerPath(c))
	return err == nil
}

// NewLayerDir returns an empty directory to unpack a layer into.
func (s *Snapshotter) NewLayerDir() (string, error) {
	return os.MkdirTemp(filepath.Join(s.root, "tmp"), "layer-")
}

// CommitLayer makes an unpacked directory the layer with chain ID c. If
// another pull committed the same layer first, ours is discarded.
func (s *Snapshotter) CommitLayer(tmp string, c digest.Digest) error {
	if err := os.Rename(tmp, s.LayerPath(c)); err != nil {
		if s.HasLayer(c) {
			return os.RemoveAll(tmp)
		}
		return fmt.Errorf("commit layer %s: %w", c, err)
	}
	return nil
}

// RemoveLayer deletes an unpacked layer, or unmounts a lazy one and
// deletes what its server kept.
func (s *Snapshotter) RemoveLayer(c digest.Digest) error {
	if s.IsLazy(c) {
		s.UnmountLazy(c)
		if err := os.RemoveAll(s.LazyDir(c)); err != nil {
			return err
		}
	}
	return os.RemoveAll(s.LayerPath(c))
}

func (s *Snapshotter) containerDir(id string) string {
	return filepath.Join(s.root, "containers", id)
}

// Mount creates container id's writable layer and mounts, at target, the
// overlay of it over the image layers (chainIDs, bottom first).
func (s *Snapshotter) Mount(id string, chainIDs []digest.Digest, target string) error {
	return s.MountIDMapped(id, chainIDs, target, nil)
}

// UserNS is the user namespace a root filesystem is for: its path, and
// the host IDs its root is.
type UserNS struct {
	Path             string
	RootUID, RootGID int
}

// MountIDMapped is Mount for a container in user namespace u (nil for
// none). The image layers are idmapped through it, so that the
// namespace's root owns the image's files without a chown; the upper
// directory is the namespace root's, and what the container writes lands
// there as the host IDs it runs as (overlayfs works in the upper
// directory as its mounter, the host's root, which an idmapped upper
// would not map). The idmapped layer mounts live only until the overlay
// holds them.
func (s *Snapshotter) MountIDMapped(id string, chainIDs []digest.Digest, target string, u *UserNS) error {
	if len(chainIDs) == 0 {
		return errors.New("an image without layers cannot be a root filesystem")
	}
	dir := s.containerDir(id)
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("rootfs of %s: %w", id, err)
		}
	}
	lowers := make([]string, 0, len(chainIDs))
	for i := len(chainIDs) - 1; i >= 0; i-- {
		if !s.HasLayer(chainIDs[i]) {
			return fmt.Errorf("rootfs of %s: layer %s is not unpacked", id, chainIDs[i])
		}
		lowers = append(lowers, s.LayerPath(chainIDs[i]))
	}
	if u != nil {
		if err := os.Lchown(upper, u.RootUID, u.RootGID); err != nil {
			return fmt.Errorf("rootfs of %s: %w", id, err)
		}
		mapped, err := idmapLayers(filepath.Join(dir, "idmap"), lowers, u.Path)
		defer unmountIDMapped(filepath.Join(dir, "idmap"))
		if err != nil {
			return fmt.Errorf("rootfs of %s: %w", id, err)
		}
		lowers = mapped
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lowers, ":"), upper, work)
	if len(opts) >= os.Getpagesize() {
		return fmt.Errorf("rootfs of %s: %d layers make overlay options longer than a page", id, len(chainIDs))
	}
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay rootfs of %s at %s: %w", id, target, err)
	}
	return nil
}

// idmapLayers attaches an idmapped bind of each of dirs at under/<n>.
func idmapLayers(under string, dirs []string, usernsPath string) ([]string, error) {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = filepath.Join(under, strconv.Itoa(i))
		if err := os.MkdirAll(out[i], 0o700); err != nil {
			return nil, err
		}
		if err := idmap.Bind(d, out[i], usernsPath); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// unmountIDMapped detaches what idmapLayers attached (and, after a crash
// between the two, what it left) and removes the directories.
func unmountIDMapped(under string) {
	ents, _ := os.ReadDir(under)
	for _, e := range ents {
		_ = unmountAll(filepath.Join(under, e.Name()))
	}
	_ = os.RemoveAll(under)
}

// Unmount unmounts target (if mounted) and deletes container id's writable layer.
func (s *Snapshotter) Unmount(id, target string) error {
	if err := unmountAll(target); err != nil {
		return fmt.Errorf("unmount rootfs of %s: %w", id, err)
	}
	unmountIDMapped(filepath.Join(s.containerDir(id), "idmap"))
	return os.RemoveAll(s.containerDir(id))
}

// unmountAll unmounts target until nothing is mounted there.
func unmountAll(target string) error {
	for i := 0; i < 10; i++ {
		err := unix.Unmount(target, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil // not a mount point (any more)
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("%s is still mounted", target)
}

// UpperPath is container id's writable layer (for usage accounting).
func (s *Snapshotter) UpperPath(id string) string {
	return filepath.Join(s.containerDir(id), "upper")
}

// Usage is the bytes and inodes a directory tree uses.
type Usage struct {
	Bytes, Inodes uint64
}

// LayersUsage measures the unpacked image layers.
func (s *Snapshotter) LayersUsage() (Usage, error) { return du(filepath.Join(s.root, "layers")) }

// ContainersUsage measures the containers' writable layers.
func (s *Snapshotter) ContainersUsage() (Usage, error) {
	return du(filepath.Join(s.root, "containers"))
}

// Root is the directory the snapshots live in.
func (s *Snapshotter) Root() string { return s.root }

// Layers lists the chain IDs of the unpacked layers.
func (s *Snapshotter) Layers() ([]digest.Digest, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "layers"))
	if err != nil {
		return nil, err
	}
	out := make([]digest.Digest, 0, len(ents))
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// LayerUsage measures one unpacked layer (what `docker history` calls its size).
func (s *Snapshotter) LayerUsage(c digest.Digest) (Usage, error) { return du(s.LayerPath(c)) }

// WritableUsage measures container id's writable layer.
func (s *Snapshotter) WritableUsage(id string) (Usage, error) { return du(s.UpperPath(id)) }

// MountReadonly mounts, at target, a read-only overlay of the image layers
// (chainIDs, bottom first): an image volume. empty is an empty directory,
// the second lower layer that overlayfs needs when an image has only one.
func (s *Snapshotter) MountReadonly(chainIDs []digest.Digest, target, empty string) error {
	if len(chainIDs) == 0 {
		return errors.New("an image without layers cannot be mounted")
	}
	var lowers []string
	for i := len(chainIDs) - 1; i >= 0; i-- {
		if !s.HasLayer(chainIDs[i]) {
			return fmt.Errorf("layer %s is not unpacked", chainIDs[i])
		}
		lowers = append(lowers, s.LayerPath(chainIDs[i]))
	}
	if len(lowers) == 1 {
		lowers = append(lowers, empty)
	}
	for _, d := range []string{target, empty} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if len(opts) >= os.Getpagesize() {
		return fmt.Errorf("%d layers make overlay options longer than a page", len(chainIDs))
	}
	if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, opts); err != nil {
		return fmt.Errorf("mount image layers at %s: %w", target, err)
	}
	return nil
}

// UnmountAll unmounts target until nothing is mounted there.
func UnmountAll(target string) error { return unmountAll(target) }
