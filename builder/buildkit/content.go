package buildkit

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	bcontent "github.com/berth-runtime/berth/images/content"
)

// contentStore is BuildKit's content store (containerd's metadata over its
// own blobs) that also reads Berth's: the blobs of an image FROM names are
// where Berth keeps them, and a fetch of one (a pull of a local image) finds
// it there rather than going to its registry.
type contentStore struct {
	content.Store
	berth *bcontent.Store
}

func (c contentStore) Info(ctx context.Context, d digest.Digest) (content.Info, error) {
	info, err := c.Store.Info(ctx, d)
	if cerrdefs.IsNotFound(err) && c.berth.Has(d) {
		fi, err := os.Stat(c.berth.Path(d))
		if err != nil {
			return content.Info{}, fmt.Errorf("blob %s: %w", d, cerrdefs.ErrNotFound)
		}
		return content.Info{Digest: d, Size: fi.Size(), CreatedAt: fi.ModTime(), UpdatedAt: fi.ModTime()}, nil
	}
	return info, err
}

func (c contentStore) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	ra, err := c.Store.ReaderAt(ctx, desc)
	if cerrdefs.IsNotFound(err) && c.berth.Has(desc.Digest) {
		return local.OpenReader(c.berth.Path(desc.Digest))
	}
	return ra, err
}

// Writer answers "already exists" for a blob Berth has: the fetch that asks
// is then skipped, as it would be for a blob of BuildKit's own.
func (c contentStore) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	var o content.WriterOpts
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.Desc.Digest != "" && c.berth.Has(o.Desc.Digest) {
		if _, err := c.Store.Info(ctx, o.Desc.Digest); cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("content %s: %w", o.Desc.Digest, cerrdefs.ErrAlreadyExists)
		}
	}
	return c.Store.Writer(ctx, opts...)
}

// Update of a blob only Berth has keeps nothing: the labels BuildKit sets
// (where the blob came from, for a later push) it finds again in the image.
func (c contentStore) Update(ctx context.Context, info content.Info, fieldpaths ...string) (content.Info, error) {
	if _, err := c.Store.Info(ctx, info.Digest); cerrdefs.IsNotFound(err) && c.berth.Has(info.Digest) {
		return c.Info(ctx, info.Digest)
	}
	return c.Store.Update(ctx, info, fieldpaths...)
}
