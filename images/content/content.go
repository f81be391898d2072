// Package content is the blob store: every blob on disk under its digest,
// written to a temporary file and renamed into place only after its digest
// and size have been checked, so a blob that exists is a blob that is right.
package content

import (
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Store keeps blobs under root/blobs/<algorithm>/<hex>.
type Store struct {
	root string
}

// New opens (creating) a store in root.
func New(root string) (*Store, error) {
	for _, d := range []string{"blobs/sha256", "ingest"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("content store: %w", err)
		}
	}
	// Half-written blobs of a berthd that died mid-pull are garbage.
	ents, _ := os.ReadDir(filepath.Join(root, "ingest"))
	for _, e := range ents {
		_ = os.Remove(filepath.Join(root, "ingest", e.Name()))
	}
	return &Store{root: root}, nil
}

// At is the store in root that another process opened (New): it does not
// sweep the ingest directory, whose files may be that process's.
func At(root string) *Store { return &Store{root: root} }

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// Path is where blob d lives (whether or not it exists).
func (s *Store) Path(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded())
}

// Has reports whether blob d is stored.
func (s *Store) Has(d digest.Digest) bool {
	_, err := os.Stat(s.Path(d))
	return err == nil
}

// Delete removes blob d; a missing blob is not an error.
func (s *Store) Delete(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if err := os.Remove(s.Path(d)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Writer receives one blob; Commit checks it and makes it visible.
type Writer struct {
	s      *Store
	f      *os.File
	h      hash.Hash
	n      int64
	expect digest.Digest
	size   int64
	// flushed is how much of the blob has been handed to writeback.
	flushed int64
}

// writebackChunk is how much written data a Writer lets accumulate before
// it starts its writeback (sync_file_range, which does not wait): the fsync
// at Commit then waits for the tail only, not for a whole layer at once in
// a burst that stalls every other writer of the disk.
const writebackChunk = 8 << 20

// Writer starts a blob that must have digest d and, if size >= 0, that size.
func (s *Store) Writer(d digest.Digest, size int64) (*Writer, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob digest %q: %w", d, err)
	}
	f, err := os.CreateTemp(filepath.Join(s.root, "ingest"), d.Encoded()+"-")
	if err != nil {
		return nil, err
	}
	return &Writer{s: s, f: f, h: d.Algorithm().Hash(), expect: d, size: size}, nil
}

func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if w.n-w.flushed >= writebackChunk {
		_ = unix.SyncFileRange(int(w.f.Fd()), w.flushed, w.n-w.flushed, unix.SYNC_FILE_RANGE_WRITE)
		w.flushed = w.n
	}
	return n, err
}

// Commit verifies size and digest, then moves the blob into place.
func (w *Writer) Commit() error {
	defer w.Abort()
	if w.size >= 0 && w.n != w.size {
		return fmt.Errorf("blob %s: got %d bytes, want %d", w.expect, w.n, w.size)
	}
	if got := digest.NewDigest(w.expect.Algorithm(), w.h); got != w.expect {
		return fmt.Errorf("blob %s: content has digest %s", w.expect, got)
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	return os.Rename(w.f.Name(), w.s.Path(w.expect))
}

// Abort discards the blob unless it was committed.
func (w *Writer) Abort() {
	w.f.Close()
	_ = os.Remove(w.f.Name())
}

// Ingest stores a blob whose digest is not known before it is read (a file
// of an imported archive) and returns its sha256 digest and size.
func (s *Store) Ingest(r io.Reader) (digest.Digest, int64, error) {
	f, err := os.CreateTemp(filepath.Join(s.root, "ingest"), "unknown-")
	if err != nil {
		return "", 0, err
	}
	defer func() {
		f.Close()
		_ = os.Remove(f.Name())
	}()
	dg := digest.SHA256.Digester()
	n, err := io.Copy(io.MultiWriter(f, dg.Hash()), r)
	if err != nil {
		return "", 0, err
	}
	d := dg.Digest()
	if s.Has(d) {
		return d, n, nil
	}
	if err := f.Sync(); err != nil {
		return "", 0, err
	}
	if err := f.Close(); err != nil {
		return "", 0, err
	}
	return d, n, os.Rename(f.Name(), s.Path(d))
}

// Size returns blob d's size.
func (s *Store) Size(d digest.Digest) (int64, error) {
	fi, err := os.Stat(s.Path(d))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Put stores a blob held in memory.
func (s *Store) Put(d digest.Digest, b []byte) error {
	w, err := s.Writer(d, int64(len(b)))
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// Open returns a reader for blob d.
func (s *Store) Open(d digest.Digest) (io.ReadCloser, error) {
	return os.Open(s.Path(d))
}

// List returns the digests of every stored blob.
func (s *Store) List() ([]digest.Digest, error) {
	var out []digest.Digest
	algos, err := os.ReadDir(filepath.Join(s.root, "blobs"))
	if err != nil {
		return nil, err
	}
	for _, a := range algos {
		ents, err := os.ReadDir(filepath.Join(s.root, "blobs", a.Name()))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			d := digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), e.Name())
			if d.Validate() == nil {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// Link makes the file at path, which another store on this filesystem has
// verified to be blob d, blob d here too: a hard link, no byte copied, and
// the two stores free it each in their own time. Across filesystems the
// bytes are copied and checked as any write is.
func (s *Store) Link(d digest.Digest, path string) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("blob digest %q: %w", d, err)
	}
	if s.Has(d) {
		return nil
	}
	err := os.Link(path, s.Path(d))
	if err == nil || errors.Is(err, os.ErrExist) {
		return nil
	}
	if !errors.Is(err, unix.EXDEV) {
		return fmt.Errorf("link blob %s: %w", d, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := s.Writer(d, -1)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, f); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}
