package lazy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
)

// layer is an opened eStargz blob: its verified table of contents and the
// chunks of its files, decompressed and verified on first read and kept
// under chunksDir.
type layer struct {
	r         *estargz.Reader
	verifier  estargz.TOCEntryVerifier
	blob      *blob
	tocOffset int64
	chunksDir string

	mu       sync.Mutex
	inflight map[int64]*chunkCall
}

type chunkCall struct {
	done chan struct{}
	err  error
}

// openLayer reads b's footer and table of contents and checks the latter
// against tocDigest, the digest the image's manifest gives it: every
// chunk's digest then comes from a table that is the image's own.
func openLayer(b *blob, tocDigest digest.Digest, chunksDir string) (*layer, error) {
	sr := io.NewSectionReader(b, 0, b.size)
	tocOffset, _, err := estargz.OpenFooter(sr)
	if err != nil {
		return nil, fmt.Errorf("blob %s is not eStargz: %w", b.dgst, err)
	}
	r, err := estargz.Open(sr, estargz.WithTOCOffset(tocOffset))
	if err != nil {
		return nil, fmt.Errorf("blob %s: table of contents: %w", b.dgst, err)
	}
	v, err := r.VerifyTOC(tocDigest)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", b.dgst, err)
	}
	if err := os.MkdirAll(chunksDir, 0o700); err != nil {
		return nil, err
	}
	return &layer{r: r, verifier: v, blob: b, tocOffset: tocOffset, chunksDir: chunksDir, inflight: map[int64]*chunkCall{}}, nil
}

// readFile reads the regular file e's bytes at off into p.
func (l *layer) readFile(ctx context.Context, e *estargz.TOCEntry, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) && off < e.Size {
		ce, ok := l.r.ChunkEntryForOffset(e.Name, off)
		if !ok {
			return n, fmt.Errorf("%s: no chunk at %d", e.Name, off)
		}
		path, err := l.chunk(ctx, ce)
		if err != nil {
			return n, err
		}
		f, err := os.Open(path)
		if err != nil {
			return n, err
		}
		want := min(int64(len(p)-n), ce.ChunkOffset+ce.ChunkSize-off)
		m, err := f.ReadAt(p[n:n+int(want)], off-ce.ChunkOffset)
		f.Close()
		n += m
		off += int64(m)
		if err != nil && err != io.EOF {
			return n, err
		}
		if m == 0 {
			break
		}
	}
	return n, nil
}

// chunk returns the path of ce's bytes, decompressed and verified, making
// them first if they are not there (once, however many readers want them).
func (l *layer) chunk(ctx context.Context, ce *estargz.TOCEntry) (string, error) {
	path := filepath.Join(l.chunksDir, strconv.FormatInt(ce.Offset, 10))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	l.mu.Lock()
	c, ok := l.inflight[ce.Offset]
	if !ok {
		c = &chunkCall{done: make(chan struct{})}
		l.inflight[ce.Offset] = c
		l.mu.Unlock()
		c.err = l.makeChunk(ctx, ce, path)
		l.mu.Lock()
		delete(l.inflight, ce.Offset)
		close(c.done)
	}
	l.mu.Unlock()
	<-c.done
	return path, c.err
}

// makeChunk streams ce's compressed bytes through gzip and its digest
// into the cache: no chunk (4 MiB in estargz's default) is held in memory.
func (l *layer) makeChunk(ctx context.Context, ce *estargz.TOCEntry, path string) error {
	end := min(ce.NextOffset(), l.tocOffset)
	if end <= ce.Offset {
		end = ce.NextOffset()
	}
	fail := func(err error) error { return fmt.Errorf("%s: chunk at %d: %w", ce.Name, ce.Offset, err) }
	src, err := l.blob.open(ctx, ce.Offset, end-ce.Offset)
	if err != nil {
		return fail(err)
	}
	defer src.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(src, 64<<10))
	if err != nil {
		return fail(err)
	}
	defer zr.Close()
	if _, err := io.CopyN(io.Discard, zr, ce.InnerOffset); err != nil {
		return fail(err)
	}
	v, err := l.verifier.Verifier(ce)
	if err != nil {
		return fail(err)
	}
	tmp, err := os.CreateTemp(l.chunksDir, ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = io.CopyN(io.MultiWriter(tmp, v), zr, ce.ChunkSize)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	if !v.Verified() {
		return fmt.Errorf("%s: chunk at %d does not match its digest in the table of contents", ce.Name, ce.Offset)
	}
	return os.Rename(tmp.Name(), path)
}

// prefetch decompresses, ahead of any read, the chunks of the files that
// come before the prefetch landmark — the files the image's builder saw its
// entrypoint touch (estargz.Build's prioritized files) — as the stream
// brings them.
func (l *layer) prefetch(ctx context.Context, files []*estargz.TOCEntry) error {
	lm, ok := l.r.Lookup(estargz.PrefetchLandmark)
	if !ok {
		return nil
	}
	for _, e := range files {
		if e.Offset >= lm.Offset {
			continue
		}
		for off := int64(0); off < e.Size; {
			ce, ok := l.r.ChunkEntryForOffset(e.Name, off)
			if !ok {
				break
			}
			l.blob.waitFor(ctx, min(ce.NextOffset(), l.tocOffset))
			if _, err := l.chunk(ctx, ce); err != nil {
				return err
			}
			off = ce.ChunkOffset + ce.ChunkSize
		}
	}
	return nil
}
