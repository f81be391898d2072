// Package unpack applies image layer tar streams to directories that stack as
// overlayfs lower layers: OCI whiteouts (.wh.NAME, .wh..wh..opq) become
// overlayfs whiteouts (a 0/0 character device, the trusted.overlay.opaque
// xattr). Nothing in a layer can write outside its directory: names with
// ".." or absolute paths are refused, parents are resolved inside the
// directory (cyphar/filepath-securejoin), and hard links must point inside it.
// Device nodes are created as the layer has them, as Docker and containerd do.
package unpack

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	// MaxFileSize bounds a single file in a layer: a larger header is a
	// malicious or broken archive, not an image.
	MaxFileSize = 64 << 30
)

// ErrUnsafe marks an entry that would escape the layer or is not allowed in one.
var ErrUnsafe = errors.New("unsafe layer entry")

// ErrTooLarge marks a layer whose files add up to more than Apply may write.
var ErrTooLarge = errors.New("layer too large")

// Apply unpacks the uncompressed tar stream r into the empty directory dir.
// It returns the stream's digest (the layer's diff ID) and its length.
// maxBytes (0: no limit) bounds the sum of the layer's file sizes, which a
// tar header declares before its data: a layer that would not fit stops at
// the header that crosses the bound, not when the disk is full.
func Apply(ctx context.Context, dir string, r io.Reader, maxBytes int64) (digest.Digest, int64, error) {
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(r, h)}
	tr := tar.NewReader(cr)
	type dirTime struct {
		path string
		t    time.Time
	}
	var dirs []dirTime
	var files int64
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, fmt.Errorf("read layer: %w", err)
		}
		if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA {
			if files += hdr.Size; maxBytes > 0 && files > maxBytes {
				return "", 0, fmt.Errorf("%w: its files reach %d bytes at %q, over the %d allowed", ErrTooLarge, files, hdr.Name, maxBytes)
			}
		}
		target, err := applyEntry(dir, tr, hdr)
		if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
			return "", 0, fmt.Errorf("disk full unpacking %q (the layer's files so far: %d bytes): %w", hdr.Name, files, err)
		}
		if err != nil {
			return "", 0, err
		}
		if hdr.Typeflag == tar.TypeDir && target != "" {
			dirs = append(dirs, dirTime{target, hdr.ModTime})
		}
	}
	// Directory times last: writing their entries changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		ts := []unix.Timespec{unix.NsecToTimespec(dirs[i].t.UnixNano()), unix.NsecToTimespec(dirs[i].t.UnixNano())}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i].path, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	// The digest covers the whole stream, tar padding included.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return "", 0, fmt.Errorf("read layer: %w", err)
	}
	return digest.NewDigest(digest.SHA256, h), cr.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// cleanName checks a tar entry name and returns it relative, without "./".
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: %q is an absolute path", ErrUnsafe, name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q contains \"..\"", ErrUnsafe, name)
		}
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// resolve returns the host path for a layer path: the parent resolved inside
// dir (following the layer's symlinks as if dir were /), the last element
// kept as is, so an entry replaces a symlink rather than writing through it.
func resolve(dir, name string) (string, error) {
	base := path.Base(name)
	if base == "." || base == ".." || base == "/" {
		// Not a name in a directory: a whiteout of ".wh.." or ".wh..." would
		// otherwise remove the layer's directory or the one above it.
		return "", fmt.Errorf("%w: %q names no file", ErrUnsafe, name)
	}
	parent, err := securejoin.SecureJoin(dir, path.Dir(name))
	if err != nil {
		return "", fmt.Errorf("resolve %q: %w", name, err)
	}
	p := filepath.Join(parent, base)
	if !strings.HasPrefix(p, filepath.Clean(dir)+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: %q resolves outside the layer", ErrUnsafe, name)
	}
	return p, nil
}

func applyEntry(dir string, tr *tar.Reader, hdr *tar.Header) (string, error) {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", nil // the layer's root itself
	}
	base := path.Base(name)
	if base == opaqueMarker {
		p, err := securejoin.SecureJoin(dir, path.Dir(name))
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return "", err
		}
		if err := unix.Lsetxattr(p, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			return "", fmt.Errorf("opaque dir %q: %w", path.Dir(name), err)
		}
		return "", nil
	}
	if orig, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
		if orig == "" || orig == "." || orig == ".." {
			return "", fmt.Errorf("%w: whiteout %q names no file", ErrUnsafe, name)
		}
		p, err := resolve(dir, path.Dir(name)+"/"+orig)
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		_ = os.RemoveAll(p)
		if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
			return "", fmt.Errorf("whiteout %q: %w", name, err)
		}
		return "", nil
	}

	target, err := resolve(dir, name)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", err
	}
	// An entry replaces what an earlier one put there, except that a
	// directory merges with a directory.
	if fi, err := os.Lstat(target); err == nil && !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
		if err := os.RemoveAll(target); err != nil {
			return "", err
		}
	}
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o700); err != nil && !os.IsExist(err) {
			return "", err
		}
	case tar.TypeReg, tar.TypeRegA:
		if hdr.Size < 0 || hdr.Size > MaxFileSize {
			return "", fmt.Errorf("%w: %q claims %d bytes", ErrUnsafe, name, hdr.Size)
		}
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return "", err
		}
		_, err = io.CopyN(f, tr, hdr.Size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("write %q: %w", name, err)
		}
	case tar.TypeSymlink:
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return "", err
		}
	case tar.TypeLink:
		lname, err := cleanName(hdr.Linkname)
		if err != nil || lname == "" {
			return "", fmt.Errorf("%w: hard link %q to %q", ErrUnsafe, name, hdr.Linkname)
		}
		src, err := resolve(dir, lname)
		if err != nil {
			return "", err
		}
		if fi, err := os.Lstat(src); err != nil || fi.IsDir() {
			return "", fmt.Errorf("%w: hard link %q to %q, which is not a file of this layer", ErrUnsafe, name, hdr.Linkname)
		}
		if err := os.Link(src, target); err != nil {
			return "", err
		}
		return "", nil // shares the inode: its metadata is the target's
	case tar.TypeFifo:
		if err := unix.Mkfifo(target, 0o600); err != nil {
			return "", err
		}
	case tar.TypeChar, tar.TypeBlock:
		// Some images carry /dev nodes; Docker and containerd create them
		// (root can), and so do we. The runtime's devices cgroup (or eBPF
		// filter), not the layer, decides what a container may open.
		typ := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			typ = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(target, typ|0o600, int(dev)); err != nil {
			return "", fmt.Errorf("device node %q (%d:%d): %w", name, hdr.Devmajor, hdr.Devminor, err)
		}
	case tar.TypeXGlobalHeader:
		return "", nil
	default:
		return "", fmt.Errorf("layer entry %q: unsupported tar type %q", name, hdr.Typeflag)
	}
	if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
		return "", fmt.Errorf("chown %q: %w", name, err)
	}
	for k, v := range hdr.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if err := unix.Lsetxattr(target, x, []byte(v), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
				return "", fmt.Errorf("xattr %s on %q: %w", x, name, err)
			}
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears setuid and setgid.
		if err := unix.Chmod(target, mode); err != nil {
			return "", fmt.Errorf("chmod %q: %w", name, err)
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		ts := []unix.Timespec{unix.NsecToTimespec(hdr.AccessTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
		if hdr.AccessTime.IsZero() {
			ts[0] = ts[1]
		}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	return target, nil
}
