package buildkit

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/store"
)

func newImages(t *testing.T) *images.Service {
	t.Helper()
	root := t.TempDir()
	db, err := store.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := images.New(db, root, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestContentStoreReadsBerthsBlobs: BuildKit's content store finds a blob
// only Berth has (its size, its bytes), and a write of it is answered
// "already exists", so a FROM of a local image fetches nothing; a blob
// neither has is not found.
func TestContentStoreReadsBerthsBlobs(t *testing.T) {
	ctx := context.Background()
	img := newImages(t)
	blob := []byte("a layer Berth pulled")
	d := digest.FromBytes(blob)
	if err := img.Blobs().Put(d, blob); err != nil {
		t.Fatal(err)
	}
	own, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cs := contentStore{Store: own, berth: img.Blobs()}
	info, err := cs.Info(ctx, d)
	if err != nil || info.Size != int64(len(blob)) {
		t.Fatalf("Info of Berth's blob: %+v, %v", info, err)
	}
	ra, err := cs.ReaderAt(ctx, ocispec.Descriptor{Digest: d, Size: int64(len(blob))})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(content.NewReader(ra))
	ra.Close()
	if string(got) != string(blob) {
		t.Errorf("read %q", got)
	}
	if _, err := cs.Writer(ctx, content.WithRef("x"), content.WithDescriptor(ocispec.Descriptor{Digest: d, Size: int64(len(blob))})); !cerrdefs.IsAlreadyExists(err) {
		t.Errorf("a write of Berth's blob: %v, want already exists", err)
	}
	if _, err := cs.Update(ctx, content.Info{Digest: d, Labels: map[string]string{"k": "v"}}, "labels.k"); err != nil {
		t.Errorf("an update of Berth's blob's labels: %v", err)
	}
	missing := digest.FromString("nobody has this")
	if _, err := cs.Info(ctx, missing); !cerrdefs.IsNotFound(err) {
		t.Errorf("Info of a blob no store has: %v, want not found", err)
	}
	w, err := cs.Writer(ctx, content.WithRef("y"), content.WithDescriptor(ocispec.Descriptor{Digest: missing}))
	if err != nil {
		t.Fatalf("a write of a new blob: %v", err)
	}
	w.Close()
}

// TestImageStoreNotFound: FROM an image Berth lacks goes on to the
// registry: BuildKit must hear "not found", not another error.
func TestImageStoreNotFound(t *testing.T) {
	is := imageStore{images: newImages(t)}
	if _, err := is.Get(context.Background(), "docker.io/library/nothere:latest"); !cerrdefs.IsNotFound(err) {
		t.Errorf("Get of a missing image: %v, want not found", err)
	}
	if imgs, err := is.List(context.Background()); err != nil || len(imgs) != 0 {
		t.Errorf("List of no images: %v, %v", imgs, err)
	}
}
