package builder

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
)

type configT = v1.Config

// copy is COPY and ADD: the sources (from the build context, or with
// --from from an earlier stage or an image) written into a layer at the
// destination, owned by --chown's IDs. ADD takes local files only.
func (b *Builder) copy(ctx context.Context, s *stage, sd instructions.SourcesAndDest, from, chown, chmod, text string, o Options, done map[string]*stage) error {
	root := o.ContextDir
	if from != "" {
		src, ok := done[strings.ToLower(from)]
		imageRef := from
		if ok {
			imageRef = src.imageID
		}
		mnt, unmount, err := b.mountImage(ctx, imageRef)
		if err != nil {
			return fmt.Errorf("%s: --from=%s: %w", text, from, err)
		}
		defer unmount()
		root = mnt
	}
	if len(sd.SourceContents) > 0 {
		return fmt.Errorf("%s: here-documents are not supported: %w", text, errdefs.ErrUnimplemented)
	}
	uid, gid, err := parseChown(chown)
	if err != nil {
		return fmt.Errorf("%s: %w", text, err)
	}
	var mode *int64
	if chmod != "" {
		m, err := strconv.ParseInt(chmod, 8, 32)
		if err != nil {
			return fmt.Errorf("%s: --chmod=%s: want an octal mode: %w", text, chmod, errdefs.ErrInvalidArgument)
		}
		mode = &m
	}
	dest := sd.DestPath
	if !filepath.IsAbs(dest) {
		dest = filepath.Join("/", s.config.WorkingDir, dest) + map[bool]string{true: "/"}[strings.HasSuffix(sd.DestPath, "/")]
	}
	var matches []string
	for _, src := range sd.SourcePaths {
		if strings.Contains(src, "://") {
			return fmt.Errorf("%s: URLs are not supported: %w", text, errdefs.ErrUnimplemented)
		}
		pattern, err := securejoin.SecureJoin(root, src)
		if err != nil {
			return err
		}
		found, _ := filepath.Glob(pattern)
		if len(found) == 0 {
			return fmt.Errorf("COPY failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist: %w", src, errdefs.ErrInvalidArgument)
		}
		matches = append(matches, found...)
	}
	toDir := strings.HasSuffix(dest, "/") || len(matches) > 1
	tmp, err := os.CreateTemp(b.cacheDir+"-layers", "copy-*.tar")
	if errorsIsNotExist(err) {
		_ = os.MkdirAll(b.cacheDir+"-layers", 0o700)
		tmp, err = os.CreateTemp(b.cacheDir+"-layers", "copy-*.tar")
	}
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(tmp, h))
	w := layerWriter{tw: tw, uid: uid, gid: gid, mode: mode, dirs: map[string]bool{}}
	for _, m := range matches {
		fi, err := os.Lstat(m)
		if err != nil {
			return err
		}
		target := dest
		if fi.IsDir() {
			if err := w.tree(m, strings.TrimSuffix(target, "/")); err != nil {
				return fmt.Errorf("%s: %w", text, err)
			}
			continue
		}
		if toDir {
			target = filepath.Join(target, filepath.Base(m))
		}
		if err := w.entry(m, fi, target); err != nil {
			return fmt.Errorf("%s: %w", text, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	inputs := hex.EncodeToString(h.Sum(nil))
	id, cached, err := b.commit(ctx, s, text, func() (io.ReadCloser, error) { return os.Open(tmp.Name()) }, o.NoCache, inputs)
	if err != nil {
		return err
	}
	if cached {
		fmt.Fprintln(o.Out, " ---> Using cache")
	}
	s.imageID = id
	return nil
}

func errorsIsNotExist(err error) bool { return err != nil && os.IsNotExist(err) }

// mountImage mounts an image's layers read-only, for COPY --from.
func (b *Builder) mountImage(ctx context.Context, ref string) (string, func(), error) {
	img, err := b.images.Resolve(ref)
	if errdefs.IsNotFound(err) {
		img, err = b.images.Pull(ctx, ref, nil)
	}
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "berth-build-from-")
	if err != nil {
		return "", nil, err
	}
	target, empty := filepath.Join(dir, "root"), filepath.Join(dir, "empty")
	for _, d := range []string{target, empty} {
		if err := os.Mkdir(d, 0o755); err != nil {
			os.RemoveAll(dir)
			return "", nil, err
		}
	}
	chain := make([]digest.Digest, len(img.ChainIDs))
	for i, c := range img.ChainIDs {
		chain[i] = digest.Digest(c)
	}
	if err := b.images.Snapshots().MountReadonly(chain, target, empty); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return target, func() {
		_ = unix.Unmount(target, unix.MNT_DETACH)
		os.RemoveAll(dir)
	}, nil
}

// parseChown reads --chown=UID[:GID] (numeric; the root user by name too).
func parseChown(s string) (uid, gid int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	u, g, hasG := strings.Cut(s, ":")
	num := func(v string) (int, error) {
		if v == "root" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("--chown=%s: only numeric IDs are supported: %w", s, errdefs.ErrUnimplemented)
		}
		return n, nil
	}
	if uid, err = num(u); err != nil {
		return 0, 0, err
	}
	gid = uid
	if hasG {
		gid, err = num(g)
	}
	return uid, gid, err
}

// layerWriter writes a COPY's files into a layer's tar, with their parent
// directories, under the owner and mode asked for.
type layerWriter struct {
	tw       *tar.Writer
	uid, gid int
	mode     *int64
	dirs     map[string]bool
}

var epoch = time.Unix(0, 0)

func (w *layerWriter) parents(p string) error {
	dir := filepath.Dir(p)
	if dir == "/" || w.dirs[dir] {
		return nil
	}
	if err := w.parents(dir); err != nil {
		return err
	}
	w.dirs[dir] = true
	return w.tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(dir, "/") + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch})
}

func (w *layerWriter) entry(src string, fi fs.FileInfo, target string) error {
	if err := w.parents(target); err != nil {
		return err
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(src); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name = strings.TrimPrefix(target, "/")
	if fi.IsDir() {
		hdr.Name += "/"
		w.dirs[target] = true
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = w.uid, w.gid, "", ""
	if w.mode != nil {
		hdr.Mode = *w.mode
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if fi.Mode().IsRegular() {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w.tw, f)
		return err
	}
	return nil
}

// tree copies a directory's contents (not the directory itself) to target.
func (w *layerWriter) tree(src, target string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return w.entry(p, fi, filepath.Join(target, rel))
	})
}
