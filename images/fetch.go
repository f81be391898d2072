package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/images/unpack"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// fetchLayers downloads and unpacks the layers not yet unpacked, a few at a
// time; each layer streams from the registry through the digest check and
// decompression into the unpacker, with no stop on disk in between.
func (s *Service) fetchLayers(ctx context.Context, img v1.Image, src *source, layers []v1.Layer, diffIDs, chainIDs []digest.Digest, prog *progress) error {
	for i, l := range layers {
		if !s.snapshots.HasLayer(chainIDs[i]) {
			if n, err := l.Size(); err == nil {
				prog.total += n
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, 6)
	errs := make(chan error, len(layers))
	var wg sync.WaitGroup
	for i, l := range layers {
		if s.snapshots.HasLayer(chainIDs[i]) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
			defer func() { <-sem }()
			fetch := func() error { return s.fetchLayer(ctx, l, diffIDs[i], chainIDs[i], prog) }
			if toc, ok := s.lazyCandidate(src, img, i); ok {
				fetch = func() error { return s.mountLazyOrFetch(ctx, src, l, toc, diffIDs[i], chainIDs[i], prog) }
			}
			if err := s.fetchLayerOnce(ctx, chainIDs[i], fetch); err != nil {
				cancel()
				errs <- fmt.Errorf("layer %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		if !errors.Is(err, context.Canceled) || len(all) == 0 {
			all = append(all, err)
		}
	}
	if len(all) > 0 {
		return all[0]
	}
	return nil
}

// layerFetch is one download of a layer that concurrent pulls share.
type layerFetch struct {
	done chan struct{}
	err  error
}

// fetchLayerOnce fetches a layer unless another pull is fetching it, in which
// case it waits for that one's result.
func (s *Service) fetchLayerOnce(ctx context.Context, chainID digest.Digest, fetch func() error) error {
	s.inflightMu.Lock()
	if f, ok := s.inflight[chainID]; ok {
		s.inflightMu.Unlock()
		select {
		case <-f.done:
			if f.err == nil || s.snapshots.HasLayer(chainID) {
				return nil
			}
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.snapshots.HasLayer(chainID) {
		s.inflightMu.Unlock()
		return nil
	}
	f := &layerFetch{done: make(chan struct{})}
	s.inflight[chainID] = f
	s.inflightMu.Unlock()
	f.err = fetch()
	s.inflightMu.Lock()
	delete(s.inflight, chainID)
	s.inflightMu.Unlock()
	close(f.done)
	return f.err
}

func (s *Service) fetchLayer(ctx context.Context, l v1.Layer, diffID, chainID digest.Digest, prog *progress) error {
	h, err := l.Digest()
	if err != nil {
		return err
	}
	dgst := digest.Digest(h.String())
	size, err := l.Size()
	if err != nil {
		return err
	}
	tmp, err := s.snapshots.NewLayerDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// A blob already stored (an import, or a layer whose snapshot was
	// lost) is unpacked from the store; otherwise it streams into the store
	// and the unpacker at once.
	var rc io.ReadCloser
	var sink blobSink = discard{}
	stored := s.content.Has(dgst)
	if stored {
		rc, err = s.content.Open(dgst)
	} else {
		rc, err = l.Compressed()
	}
	if err != nil {
		return fmt.Errorf("fetch %s: %w", dgst, err)
	}
	defer rc.Close()
	if !stored {
		w, err := s.content.Writer(dgst, size)
		if err != nil {
			return err
		}
		defer w.Abort()
		sink = w
	}
	counted := &countingReader{r: rc, report: func(n int64) { prog.add(dgst, n, size, false) }}
	dr, err := decompress(io.TeeReader(counted, sink))
	if err != nil {
		return fmt.Errorf("layer %s: %w", dgst, err)
	}
	got, _, err := unpack.Apply(ctx, tmp, dr, s.layerBound(tmp))
	dr.Close()
	if errors.Is(err, unpack.ErrTooLarge) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		err = fmt.Errorf("%w: %w", err, errdefs.ErrResourceExhausted)
	}
	if err != nil {
		return fmt.Errorf("unpack layer %s into %s: %w", dgst, s.snapshots.Root(), err)
	}
	// Read what the decompressor left (trailing data) so the blob is whole.
	if _, err := io.Copy(sink, counted); err != nil {
		return fmt.Errorf("fetch %s: %w", dgst, err)
	}
	if err := sink.Commit(); err != nil {
		return err
	}
	if got != diffID {
		return fmt.Errorf("layer %s: uncompressed digest %s, config says %s", dgst, got, diffID)
	}
	if err := s.snapshots.CommitLayer(tmp, chainID); err != nil {
		return err
	}
	prog.add(dgst, 0, size, true)
	return nil
}

// mountLazyOrFetch mounts the eStargz layer l lazily, or, when that fails
// (no FUSE, a table of contents that does not match its digest), fetches
// and unpacks it as any layer.
func (s *Service) mountLazyOrFetch(ctx context.Context, src *source, l v1.Layer, toc, diffID, chainID digest.Digest, prog *progress) error {
	err := s.mountLazy(ctx, src, l, toc, chainID)
	if err == nil {
		if h, err := l.Digest(); err == nil {
			size, _ := l.Size()
			prog.mounted(digest.Digest(h.String()), size)
		}
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	s.log.Warn("lazy pull failed; pulling the layer whole", slog.String("layer", chainID.String()), slog.Any("err", err))
	return s.fetchLayer(ctx, l, diffID, chainID, prog)
}

// layerBound is what a layer unpacked in dir may write (0: no bound).
func (s *Service) layerBound(dir string) int64 {
	var fs unix.Statfs_t
	if s.layerDiskFraction <= 0 || unix.Statfs(dir, &fs) != nil {
		return 0
	}
	return int64(float64(fs.Bavail) * float64(fs.Bsize) * s.layerDiskFraction)
}

// blobSink is where a layer's compressed bytes go as they are read: the
// content store, or nowhere when the blob is stored already.
type blobSink interface {
	io.Writer
	Commit() error
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) Commit() error               { return nil }

// decompress recognises gzip and zstd by their magic numbers; anything else
// is taken as an uncompressed tar.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := newPeekReader(r)
	magic, _ := br.Peek(4)
	switch compressionOf(magic) {
	case gzipped:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr, nil
	case zstandard:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}
