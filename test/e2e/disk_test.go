package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// zerosLayer is a gzip layer of one file of n zero bytes: tiny to serve,
// n bytes to unpack.
type zerosLayer struct {
	gz             []byte
	digest, diffID v1.Hash
}

func newZerosLayer(t *testing.T, n int64) *zerosLayer {
	t.Helper()
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	diff := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, diff))
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: n, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 1<<20)
	for left := n; left > 0; left -= int64(len(zero)) {
		tw.Write(zero[:min(left, int64(len(zero)))])
	}
	tw.Close()
	zw.Close()
	l := &zerosLayer{gz: gz.Bytes()}
	d := sha256.Sum256(l.gz)
	l.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(d[:])}
	l.diffID = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diff.Sum(nil))}
	return l
}

func (l *zerosLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *zerosLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *zerosLayer) Size() (int64, error)                { return int64(len(l.gz)), nil }
func (l *zerosLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }
func (l *zerosLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.gz)), nil
}
func (l *zerosLayer) Uncompressed() (io.ReadCloser, error) {
	return gzip.NewReader(bytes.NewReader(l.gz))
}

// startOnSmallRoot starts a berthd whose root is a tmpfs of size bytes.
func startOnSmallRoot(t *testing.T, size string, extra string) *daemon {
	d := newDaemon(t, extra)
	if err := os.MkdirAll(d.root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", d.root, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("tmpfs: %v", err)
	}
	d.start(fixtures.Binaries(t))
	return d
}

// assertPullLeftNothing: the failed pull left no half-written blob, layer
// or image, and berthd still pulls a good image.
func assertPullLeftNothing(t *testing.T, d *daemon, ref, goodRef string) {
	t.Helper()
	ctx := context.Background()
	for _, sub := range []string{"content/ingest", "snapshots/tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(d.root, sub)); len(ents) > 0 {
			t.Errorf("%s holds %d entries after the failed pull", sub, len(ents))
		}
	}
	if st, err := d.is.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: ref}, false); err != nil || st.GetImage() != nil {
		t.Errorf("the failed image is recorded: %v %v", st.GetImage(), err)
	}
	if _, err := d.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: goodRef}, nil, nil); err != nil {
		t.Fatalf("berthd cannot pull after the failed pull: %v", err)
	}
}

func zerosImage(t *testing.T, n int64) v1.Image {
	img, err := mutate.AppendLayers(empty.Image, newZerosLayer(t, n))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestLayerOverFreeDisk: a 2 GiB layer of zeros (a few MB to serve) against
// a 64 MiB root stops at its tar header, before it writes: ResourceExhausted
// naming the layer, nothing left, berthd serving.
func TestLayerOverFreeDisk(t *testing.T) {
	d := startOnSmallRoot(t, "64m", "")
	host := fixtures.Registry(t)
	ref := fixtures.Push(t, zerosImage(t, 2<<30), host, "zeros:2g")
	good := fixtures.PushBusybox(t, host)
	_, err := d.is.PullImage(context.Background(), &runtimeapi.ImageSpec{Image: ref}, nil, nil)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "layer sha256:") || !strings.Contains(err.Error(), "over the") {
		t.Fatalf("pull of a layer larger than the disk: %v, want ResourceExhausted naming the layer and the bound", err)
	}
	assertPullLeftNothing(t, d, ref, good)
}

// TestLayerFillsDisk: with the bound off, a 100 MiB layer on a 64 MiB root
// fills the disk mid-unpack: ResourceExhausted ("disk full", the file),
// the half-unpacked layer removed, berthd serving.
func TestLayerFillsDisk(t *testing.T) {
	d := startOnSmallRoot(t, "64m", "max_layer_disk_fraction = 0\n")
	host := fixtures.Registry(t)
	ref := fixtures.Push(t, zerosImage(t, 100<<20), host, "zeros:100m")
	good := fixtures.PushBusybox(t, host)
	_, err := d.is.PullImage(context.Background(), &runtimeapi.ImageSpec{Image: ref}, nil, nil)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("pull that fills the disk: %v, want ResourceExhausted saying the disk is full", err)
	}
	assertPullLeftNothing(t, d, ref, good)
}
