package content

import (
	"io"
	"os"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestCommitVerifies(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("hello blob")
	d := digest.FromBytes(data)

	// Wrong content never becomes visible.
	w, _ := s.Writer(d, int64(len(data)))
	w.Write([]byte("hello blub"))
	if err := w.Commit(); err == nil {
		t.Fatal("commit of wrong content succeeded")
	}
	if s.Has(d) {
		t.Fatal("bad blob is visible")
	}
	// Wrong size neither.
	w, _ = s.Writer(d, 3)
	w.Write(data)
	if err := w.Commit(); err == nil {
		t.Fatal("commit of wrong size succeeded")
	}
	if err := s.Put(d, data); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != string(data) {
		t.Fatalf("got %q", got)
	}
	// Nothing is left in ingest/.
	ents, _ := os.ReadDir(s.root + "/ingest")
	if len(ents) != 0 {
		t.Fatalf("ingest holds %d files", len(ents))
	}
}

// A blob written in pieces past the writeback chunk (whose writeback the
// Writer starts as it goes) commits whole and byte for byte.
func TestLargeBlobInPieces(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3*writebackChunk+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	d := digest.FromBytes(data)
	w, err := s.Writer(d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 1 << 20 {
		if _, err := w.Write(data[off:min(off+1<<20, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if w.flushed < 3*writebackChunk {
		t.Fatalf("writeback started for %d bytes, want at least %d", w.flushed, 3*writebackChunk)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(s.Path(d))
	if err != nil || string(got) != string(data) {
		t.Fatalf("committed blob differs (%d bytes, %v)", len(got), err)
	}
}
