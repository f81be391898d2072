package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/gzip"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// bigImage makes an image of 5 gzip layers, each of 40 MB of text-like
// data (it compresses about 2:1, like real layers), different for each seed.
func bigImage(b *testing.B, seed int64) v1.Image {
	img := empty.Image
	rng := rand.New(rand.NewSource(seed))
	const hexdig = "0123456789abcdef"
	for l := 0; l < 5; l++ {
		var tarBuf bytes.Buffer
		tw := tar.NewWriter(&tarBuf)
		for f := 0; f < 40; f++ {
			data := make([]byte, 1<<20)
			for i := range data {
				if i%64 == 63 {
					data[i] = '\n'
				} else {
					data[i] = hexdig[rng.Intn(16)]
				}
			}
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("layer%d/file%d", l, f), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
			tw.Write(data)
		}
		tw.Close()
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
		zw.Write(tarBuf.Bytes())
		zw.Close()
		compressed := gz.Bytes()
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(compressed)), nil })
		if err != nil {
			b.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			b.Fatal(err)
		}
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, _ = mutate.ConfigFile(img, cf)
	return img
}

// BenchmarkPull: pull and unpack, cold each round (a new image per round,
// pulled by each daemon once), interleaved.
func BenchmarkPull(b *testing.B) {
	fixtures.RequireRoot(b)
	fixtures.RequireBinary(b, "containerd")
	host := fixtures.Registry(b)
	targets, stop := startTargets(b, "pull", host)
	defer stop()
	const rounds = 5
	times := map[string][]time.Duration{}
	var size int64
	for r := 0; r < rounds; r++ {
		img := bigImage(b, int64(r))
		if r == 0 {
			m, _ := img.Manifest()
			for _, l := range m.Layers {
				size += l.Size
			}
		}
		ref := fixtures.Push(b, img, host, fmt.Sprintf("bench/big:%d", r))
		order := targets
		if r%2 == 1 {
			order = []*target{targets[1], targets[0]}
		}
		for _, t := range order {
			s := time.Now()
			id, err := t.is.PullImage(context.Background(), &runtimeapi.ImageSpec{Image: ref}, nil, nil)
			if err != nil {
				b.Fatalf("%s pull: %v", t.name, err)
			}
			times[t.name] = append(times[t.name], time.Since(s))
			_ = t.is.RemoveImage(context.Background(), &runtimeapi.ImageSpec{Image: id})
		}
	}
	report(fmt.Sprintf("pull + unpack of a 5-layer image (%.0f MB compressed, 210 MB unpacked), cold", float64(size)/1e6), rounds, targets, times)
}
