package lazy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// remote is where a blob's bytes come from (images.BlobReader).
type remote interface {
	Range(ctx context.Context, off, n int64) (io.ReadCloser, error)
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
}

// blob is a layer's compressed bytes: a prefix of them on disk, growing as
// the background stream brings it, and the rest read from the registry by
// the range a reader asks for.
type blob struct {
	remote remote
	size   int64
	dgst   digest.Digest
	file   *os.File // the prefix, at its own offsets
	log    *slog.Logger

	mu   sync.Mutex
	have int64 // bytes of the prefix on disk
	// grew is closed (and replaced) whenever have grows or the stream ends.
	grew chan struct{}
	// streaming is set while the background stream runs: a read just past
	// the prefix waits a little for it rather than asking the registry again.
	streaming bool
}

// A read up to nearStream past the prefix waits up to streamWait for the
// stream, which on a good link brings it sooner than a request of the
// read's own would; a stalled stream costs the read streamWait, once.
const (
	nearStream = 4 << 20
	streamWait = 200 * time.Millisecond
)

func newBlob(r remote, size int64, dgst digest.Digest, path string, log *slog.Logger) (*blob, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	return &blob{remote: r, size: size, dgst: dgst, file: f, log: log, grew: make(chan struct{})}, nil
}

// ReadAt reads from the prefix when it holds the range, else waits for the
// stream when the range is just ahead of it, else asks the registry.
func (b *blob) ReadAt(p []byte, off int64) (int, error) {
	return b.readAt(context.Background(), p, off)
}

func (b *blob) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	end := min(off+int64(len(p)), b.size)
	if off >= end {
		return 0, io.EOF
	}
	var n int
	var err error
	if b.local(ctx, off, end) {
		n, err = b.file.ReadAt(p[:end-off], off)
	} else {
		n, err = b.remote.ReadAtContext(ctx, p[:end-off], off)
	}
	if err == nil && end < off+int64(len(p)) {
		err = io.EOF
	}
	return n, err
}

// open streams n bytes at off: from the prefix, or the registry's answer
// to a range request, as readAt chooses.
func (b *blob) open(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	end := min(off+n, b.size)
	if b.local(ctx, off, end) {
		return io.NopCloser(io.NewSectionReader(b.file, off, end-off)), nil
	}
	return b.remote.Range(ctx, off, end-off)
}

// local reports whether the prefix holds [off, end), waiting a little for
// the stream when the range is just ahead of it.
func (b *blob) local(ctx context.Context, off, end int64) bool {
	var timeout <-chan time.Time
	for {
		b.mu.Lock()
		have, streaming, grew := b.have, b.streaming, b.grew
		b.mu.Unlock()
		if have >= end {
			return true
		}
		if !streaming || off >= have+nearStream {
			return false
		}
		if timeout == nil {
			t := time.NewTimer(streamWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-grew:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// begin marks the stream started, before its goroutine runs, so that no
// reader or prefetch that comes first takes the stream for over.
func (b *blob) begin() {
	b.mu.Lock()
	b.streaming = true
	b.mu.Unlock()
}

// stream fetches the whole blob in order into the prefix file, resuming
// after a failure from where it stopped — until it is whole or ctx ends, a
// registry away for a while only delays it — and checks its digest.
// Call begin first.
func (b *blob) stream(ctx context.Context) error {
	defer func() {
		b.mu.Lock()
		b.streaming = false
		close(b.grew)
		b.grew = make(chan struct{})
		b.mu.Unlock()
	}()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var have int64
	backoff := 500 * time.Millisecond
	for have < b.size {
		before := have
		err := b.streamFrom(ctx, have, buf, h, &have)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stream blob %s: %w", b.dgst, err)
		}
		if have > before {
			backoff = 500 * time.Millisecond
		}
		b.log.Warn("blob stream failed; resuming", slog.Int64("at", have), slog.Duration("in", backoff), slog.Any("err", err))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	if got := digest.NewDigest(digest.SHA256, h); got != b.dgst {
		return fmt.Errorf("blob %s: content has digest %s", b.dgst, got)
	}
	return b.file.Sync()
}

func (b *blob) streamFrom(ctx context.Context, off int64, buf []byte, h io.Writer, have *int64) error {
	body, err := b.remote.Range(ctx, off, b.size-off)
	if err != nil {
		return err
	}
	defer body.Close()
	for *have < b.size {
		n, err := io.ReadFull(body, buf[:min(int64(len(buf)), b.size-*have)])
		if n > 0 {
			if _, werr := b.file.WriteAt(buf[:n], *have); werr != nil {
				return werr
			}
			h.Write(buf[:n])
			*have += int64(n)
			b.mu.Lock()
			b.have = *have
			close(b.grew)
			b.grew = make(chan struct{})
			b.mu.Unlock()
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return fmt.Errorf("blob ended at %d of %d bytes", *have, b.size)
			}
			return err
		}
	}
	return nil
}

// waitFor blocks until the prefix holds off bytes, the stream stops, or ctx ends.
func (b *blob) waitFor(ctx context.Context, off int64) bool {
	for {
		b.mu.Lock()
		have, streaming, grew := b.have, b.streaming, b.grew
		b.mu.Unlock()
		if have >= off || !streaming {
			return have >= off
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return false
		}
	}
}
