package lazy

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/images/content"
	"github.com/berth-runtime/berth/test/fixtures"
)

// testTar is a layer with what a lazy layer must show as an unpacked one
// would: a file of several chunks, a hard link, a symlink, a fifo, an
// xattr, a whiteout and an opaque directory.
func testTar(t *testing.T, big []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1700000000, 0)
	hdr := func(h *tar.Header, body []byte) {
		h.ModTime = mt
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	hdr(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 7, Gid: 8}, nil)
	hdr(&tar.Header{Name: "d/small", Typeflag: tar.TypeReg, Mode: 0o4755,
		PAXRecords: map[string]string{"SCHILY.xattr.user.berth": "yes"}}, []byte("small file\n"))
	hdr(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644}, big)
	hdr(&tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: "d/small"}, nil)
	hdr(&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "d/small"}, nil)
	hdr(&tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o600}, nil)
	hdr(&tar.Header{Name: ".wh.gone", Typeflag: tar.TypeReg}, nil)
	hdr(&tar.Header{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	hdr(&tar.Header{Name: "opq/.wh..wh..opq", Typeflag: tar.TypeReg}, nil)
	hdr(&tar.Header{Name: "opq/new", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("new\n"))
	tw.Close()
	return buf.Bytes()
}

type served struct {
	mnt, content, dir string
	blob              digest.Digest
	toc               string
	smallAt           int64 // where the small file's compressed bytes are in the blob
}

// serve pushes an eStargz image of testTar to a registry (through front,
// when set) and serves its layer in this process. tocDigest, if set,
// replaces the manifest's.
func serve(t *testing.T, big []byte, front func(host string, s *served) string, tocDigest string, prioritized ...string) (*served, error) {
	fixtures.RequireRoot(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: the kernel has no FUSE")
	}
	host := fixtures.Registry(t)
	layer, toc := fixtures.EStargzLayer(t, testTar(t, big), prioritized...)
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, Annotations: map[string]string{images.TOCDigestAnnotation: toc}})
	if err != nil {
		t.Fatal(err)
	}
	fixtures.Push(t, img, host, "lazytest:1")
	h, _ := layer.Digest()
	size, _ := layer.Size()
	s := &served{blob: digest.Digest(h.String()), toc: toc}
	rc, _ := layer.Compressed()
	raw, _ := io.ReadAll(rc)
	r, err := estargz.Open(io.NewSectionReader(bytes.NewReader(raw), 0, int64(len(raw))))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := r.Lookup("d/small")
	s.smallAt = e.Offset
	if front != nil {
		host = front(host, s)
	}
	if tocDigest == "" {
		tocDigest = toc
	}
	tmp := t.TempDir()
	s.mnt, s.content = filepath.Join(tmp, "mnt"), filepath.Join(tmp, "content")
	if _, err := content.New(s.content); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "lazy")
	s.dir = dir
	os.Mkdir(dir, 0o700)
	os.Mkdir(s.mnt, 0o755)
	cfg := images.LazyLayer{
		Blob:      images.RemoteBlob{Registry: host, Host: host, Repository: "lazytest", Digest: s.blob, Size: size},
		TOCDigest: digest.Digest(tocDigest), Mountpoint: s.mnt, Content: s.content,
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, images.LazyConfigFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = Serve(ctx, dir, slog.New(slog.NewTextHandler(io.Discard, nil)), func(err error) { ready <- err })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its context ended")
			unix.Unmount(s.mnt, unix.MNT_DETACH)
		}
	})
	return s, <-ready
}

func TestServe(t *testing.T) {
	big := make([]byte, 10<<20+12345) // three chunks of estargz's 4 MiB
	rand.NewChaCha8([32]byte{1}).Read(big)
	s, err := serve(t, big, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.mnt, &st); err != nil || st.Type != unix.FUSE_SUPER_MAGIC {
		t.Fatalf("statfs %s: type %#x, %v; want a FUSE mount", s.mnt, st.Type, err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(s.mnt, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("d/small"); got != "small file\n" {
		t.Errorf("d/small = %q", got)
	}
	if got := read("link"); got != "small file\n" {
		t.Errorf("link = %q", got)
	}
	if got := read("big"); got != string(big) {
		t.Errorf("big: %d bytes, sha256 %x; want %d bytes, %x", len(got), sha256.Sum256([]byte(got)), len(big), sha256.Sum256(big))
	}
	// Reads across a chunk's end.
	f, _ := os.Open(filepath.Join(s.mnt, "big"))
	defer f.Close()
	p := make([]byte, 8192)
	for _, off := range []int64{4<<20 - 4000, 8<<20 - 1, int64(len(big)) - 8192} {
		if _, err := f.ReadAt(p, off); err != nil || !bytes.Equal(p, big[off:off+8192]) {
			t.Errorf("big at %d: %v, or bytes differ", off, err)
		}
	}

	var small, hard, fifo, d unix.Stat_t
	unix.Lstat(filepath.Join(s.mnt, "d/small"), &small)
	unix.Lstat(filepath.Join(s.mnt, "hard"), &hard)
	unix.Lstat(filepath.Join(s.mnt, "fifo"), &fifo)
	unix.Lstat(filepath.Join(s.mnt, "d"), &d)
	if small.Ino != hard.Ino || small.Nlink != 2 {
		t.Errorf("hard link: inodes %d, %d, nlink %d; want one inode, two links", small.Ino, hard.Ino, small.Nlink)
	}
	if small.Mode != syscall.S_IFREG|0o4755 {
		t.Errorf("d/small mode %o, want set-user-ID 4755", small.Mode)
	}
	if fifo.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		t.Errorf("fifo mode %o", fifo.Mode)
	}
	if d.Mode != syscall.S_IFDIR|0o750 || d.Uid != 7 || d.Gid != 8 {
		t.Errorf("d: mode %o, owner %d:%d; want 750, 7:8", d.Mode, d.Uid, d.Gid)
	}
	if l, _ := os.Readlink(filepath.Join(s.mnt, "link")); l != "d/small" {
		t.Errorf("link -> %q", l)
	}
	xa := make([]byte, 16)
	if n, err := unix.Lgetxattr(filepath.Join(s.mnt, "d/small"), "user.berth", xa); err != nil || string(xa[:n]) != "yes" {
		t.Errorf("xattr user.berth: %q, %v", xa[:n], err)
	}
	if err := os.WriteFile(filepath.Join(s.mnt, "new"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("a write: %v, want EROFS", err)
	}
	for _, n := range []string{estargz.PrefetchLandmark, estargz.NoPrefetchLandmark} {
		if _, err := os.Lstat(filepath.Join(s.mnt, n)); err == nil {
			t.Errorf("the builder's %s is visible", n)
		}
	}

	// Whiteouts, as overlayfs reads them: under the lazy layer, a lower
	// layer's gone and opq/old are hidden.
	lower, ovl := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(lower, "gone"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(lower, "opq"), 0o755)
	os.WriteFile(filepath.Join(lower, "opq/old"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(lower, "kept"), []byte("kept"), 0o644)
	if err := unix.Mount("overlay", ovl, "overlay", unix.MS_RDONLY, "lowerdir="+s.mnt+":"+lower); err != nil {
		t.Fatalf("overlay over the lazy layer: %v", err)
	}
	defer unix.Unmount(ovl, unix.MNT_DETACH)
	for p, want := range map[string]bool{"gone": false, "opq/old": false, "opq/new": true, "kept": true, "big": true} {
		if _, err := os.Stat(filepath.Join(ovl, p)); (err == nil) != want {
			t.Errorf("overlay: %s exists %v, want %v", p, err == nil, want)
		}
	}

	// The background stream stores the whole blob, checked, in the content store.
	cs := content.At(s.content)
	deadline := time.Now().Add(30 * time.Second)
	for !cs.Has(s.blob) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(cs.Path(s.blob))
	if err != nil || digest.FromBytes(b) != s.blob {
		t.Fatalf("content store: blob %s: %v (digest %s)", s.blob, err, digest.FromBytes(b))
	}
}

// The files before the prefetch landmark (the builder's prioritized ones)
// are decompressed into the chunk cache before anything reads them.
func TestServePrefetches(t *testing.T) {
	s, err := serve(t, []byte("x"), nil, "", "d/small")
	if err != nil {
		t.Fatal(err)
	}
	chunk := filepath.Join(s.dir, chunksDir, fmt.Sprint(s.smallAt))
	deadline := time.Now().Add(10 * time.Second)
	for _, err := os.Stat(chunk); err != nil && time.Now().Before(deadline); _, err = os.Stat(chunk) {
		time.Sleep(10 * time.Millisecond)
	}
	if b, err := os.ReadFile(chunk); err != nil || string(b) != "small file\n" {
		t.Fatalf("prefetched chunk of d/small: %q, %v", b, err)
	}
	big := filepath.Join(s.dir, chunksDir)
	if ents, _ := os.ReadDir(big); len(ents) != 1 {
		t.Errorf("chunk cache holds %d entries, want d/small's alone (nothing else is prioritized or read)", len(ents))
	}
}

func TestServeRefusesAnotherTOC(t *testing.T) {
	_, err := serve(t, []byte("x"), nil, digest.FromString("another table").String())
	if err == nil || !strings.Contains(err.Error(), "invalid TOC JSON") {
		t.Fatalf("serve with the wrong TOC digest: %v, want it refused", err)
	}
}

// A registry (or a path to it) that changes a byte of a file's chunk: the
// read fails (EIO), never returns the changed bytes.
func TestServeVerifiesChunks(t *testing.T) {
	tamper := func(host string, s *served) string {
		return fixtures.Front(t, host, nil, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if strings.Contains(r.URL.Path, "/blobs/"+s.blob.String()) {
				w = &flipWriter{ResponseWriter: w, at: s.smallAt + 20}
			}
			next.ServeHTTP(w, r)
		})
	}
	s, err := serve(t, []byte("x"), tamper, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(s.mnt, "d/small"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("read of a changed chunk: %q, %v; want EIO", b, err)
	}
}

// flipWriter flips the byte at blob offset at in a blob's response.
type flipWriter struct {
	http.ResponseWriter
	at, pos int64
	started bool
}

func (w *flipWriter) Write(p []byte) (int, error) {
	if !w.started {
		w.started = true
		var a, b, size int64
		if _, err := fmt.Sscanf(w.Header().Get("Content-Range"), "bytes %d-%d/%d", &a, &b, &size); err == nil {
			w.pos = a
		}
	}
	if w.at >= w.pos && w.at < w.pos+int64(len(p)) {
		q := append([]byte(nil), p...)
		q[w.at-w.pos] ^= 0xff
		p = q
	}
	w.pos += int64(len(p))
	return w.ResponseWriter.Write(p)
}

// A stream cut short (a registry that drops the connection) resumes where
// it stopped: the blob still lands whole in the content store.
func TestServeResumesStream(t *testing.T) {
	big := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{3}).Read(big)
	var cut sync.Once
	drop := func(host string, s *served) string {
		return fixtures.Front(t, host, nil, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if strings.Contains(r.URL.Path, "/blobs/"+s.blob.String()) && strings.HasPrefix(r.Header.Get("Range"), "bytes=0-") {
				first := false
				cut.Do(func() { first = true })
				if first {
					w = &cutWriter{ResponseWriter: w, left: 1 << 20}
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	s, err := serve(t, big, drop, "")
	if err != nil {
		t.Fatal(err)
	}
	cs := content.At(s.content)
	for deadline := time.Now().Add(30 * time.Second); !cs.Has(s.blob) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if b, err := os.ReadFile(cs.Path(s.blob)); err != nil || digest.FromBytes(b) != s.blob {
		t.Fatalf("blob after a cut stream: %v", err)
	}
}

// cutWriter drops the connection after left bytes.
type cutWriter struct {
	http.ResponseWriter
	left int
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if len(p) >= w.left {
		w.ResponseWriter.Write(p[:w.left])
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	w.left -= len(p)
	return w.ResponseWriter.Write(p)
}
