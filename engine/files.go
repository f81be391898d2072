package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/go-archive"
	"github.com/moby/go-archive/chrootarchive"
	"github.com/moby/go-archive/compression"

	"github.com/berth-runtime/berth/images/snapshot"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// A container's files: docker diff, export and cp. They are moby's archive
// code (the field's own, chroot-safe against symlinks that point out of
// the container) over the container's files as the containers service
// finds them.

// Changes is `docker diff`.
func (e *Engine) Changes(c store.Container) ([]snapshot.Change, error) {
	return e.containers.Changes(c.ID)
}

// Export is `docker export`: the container's root file system (image and
// changes, not its volumes) as a tar stream.
func (e *Engine) Export(c store.Container) (io.ReadCloser, error) {
	root, err := e.containers.RootFS(c.ID)
	if err != nil {
		return nil, err
	}
	tr, err := archive.Tar(root, compression.None)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", c.Name, err)
	}
	return tr, nil
}

// PathStat is what `docker cp` learns of a path before it copies.
type PathStat struct {
	Name       string
	Size       int64
	Mode       os.FileMode
	Mtime      time.Time
	LinkTarget string
}

// containerPath resolves path in c's files (symlinks followed inside them
// only), giving the root, the resolved host path and its Lstat.
func (e *Engine) containerPath(c store.Container, p string) (root, hostPath string, fi os.FileInfo, err error) {
	if p == "" {
		return "", "", nil, fmt.Errorf("path is required: %w", errdefs.ErrInvalidArgument)
	}
	if root, err = e.containers.FilesRoot(c.ID); err != nil {
		return "", "", nil, err
	}
	asked := p
	if !filepath.IsAbs(p) {
		p = "/" + p
	}
	// The last element is not followed if it is a link (docker cp copies
	// the link itself), its directory is.
	dir, base := filepath.Split(filepath.Clean(p))
	resolvedDir, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return "", "", nil, err
	}
	hostPath = filepath.Join(resolvedDir, base)
	if base == "" {
		// The container's own root: a running one's is /proc/PID/root,
		// a link to be followed.
		hostPath = resolvedDir
		fi, err = os.Stat(hostPath)
	} else {
		fi, err = os.Lstat(hostPath)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", nil, fmt.Errorf("Could not find the file %s in container %s: %w", asked, c.Name, errdefs.ErrNotFound)
	}
	return root, hostPath, fi, err
}

func pathStat(hostPath string, fi os.FileInfo) PathStat {
	link := ""
	if fi.Mode()&os.ModeSymlink != 0 {
		link, _ = os.Readlink(hostPath)
	}
	return PathStat{Name: fi.Name(), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime(), LinkTarget: link}
}

// StatPath is path in c's files.
func (e *Engine) StatPath(c store.Container, path string) (PathStat, error) {
	_, hostPath, fi, err := e.containerPath(c, path)
	if err != nil {
		return PathStat{}, err
	}
	return pathStat(hostPath, fi), nil
}

// ArchivePath is `docker cp CONTAINER:PATH ...`: a tar of the path, its
// top entry named as the path's last element.
func (e *Engine) ArchivePath(c store.Container, path string) (io.ReadCloser, PathStat, error) {
	root, hostPath, fi, err := e.containerPath(c, path)
	if err != nil {
		return nil, PathStat{}, err
	}
	dir, base := archive.SplitPathDirEntry(hostPath)
	rebase := filepath.Base(filepath.Clean("/" + path))
	tr, err := chrootarchive.Tar(dir, archive.TarResourceRebaseOpts(base, rebase), root)
	if err != nil {
		return nil, PathStat{}, fmt.Errorf("archive of %s: %w", path, err)
	}
	return tr, pathStat(hostPath, fi), nil
}

// Extract is `docker cp ... CONTAINER:PATH`: a tar unpacked into the
// directory path names, chrooted into c's files; the files belong to the
// container's root unless copyUIDGID keeps the archive's owners.
func (e *Engine) Extract(c store.Container, path string, r io.Reader, noOverwriteDirNonDir, copyUIDGID bool) error {
	root, hostPath, fi, err := e.containerPath(c, path)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		// dockerd extracts into where a link to a directory leads.
		if hostPath, err = securejoin.SecureJoin(root, path); err != nil {
			return err
		}
		if fi, err = os.Stat(hostPath); err != nil {
			return fmt.Errorf("extraction point %s: %w", path, err)
		}
	}
	if !fi.IsDir() {
		return fmt.Errorf("extraction point is not a directory: %s: %w", path, errdefs.ErrInvalidArgument)
	}
	opts := &archive.TarOptions{NoOverwriteDirNonDir: noOverwriteDirNonDir}
	if !copyUIDGID {
		opts.ChownOpts = &archive.ChownOpts{UID: 0, GID: 0}
	}
	if err := chrootarchive.UntarWithRoot(r, hostPath, opts, root); err != nil {
		return fmt.Errorf("extract into %s: %v: %w", path, strings.TrimSpace(err.Error()), errdefs.ErrInvalidArgument)
	}
	return nil
}
