package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/test/fixtures"
)

// What a registry serves cannot make berthd read or store past the limits:
// an oversized manifest (declared or streamed), config, or layer count is
// refused with InvalidArgument naming the limit, and nothing is kept.
func TestRegistryLimits(t *testing.T) {
	fixtures.RequireRoot(t)
	backend := fixtures.Registry(t)
	ref := fixtures.PushBusybox(t, backend)
	huge := bytes.Repeat([]byte(" "), MaxManifestBytes+1)
	for _, chunked := range []bool{false, true} {
		front := fixtures.Front(t, backend, nil, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				if !chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(huge)))
				}
				w.Write(huge[:1024])
				w.(http.Flusher).Flush() // no length: the body comes chunked
				w.Write(huge[1024:])
				return
			}
			next.ServeHTTP(w, r)
		})
		s := newService(t)
		_, err := s.Pull(context.Background(), strings.Replace(ref, backend, front, 1), nil)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "limit") {
			t.Fatalf("oversized manifest (chunked %v): %v", chunked, err)
		}
	}

	// Too many layers, and too big a config: refused before any is fetched.
	var layers []v1.Layer
	img := empty.Image
	for i := range MaxLayers + 1 {
		layers = append(layers, fixtures.Layer(t, tarOfFile(t, fmt.Sprintf("f%d", i), "x")))
	}
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	deep := fixtures.Push(t, img, backend, "library/deep:1")
	cfgImg, err := mutate.Config(fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}}),
		v1.Config{Cmd: []string{"sh"}, Labels: map[string]string{"padding": strings.Repeat("x", MaxConfigBytes)}})
	if err != nil {
		t.Fatal(err)
	}
	fat := fixtures.Push(t, cfgImg, backend, "library/fatconfig:1")
	s := newService(t)
	for ref, want := range map[string]string{deep: fmt.Sprintf("%d layers, over the limit of %d", MaxLayers+1, MaxLayers), fat: "config is"} {
		_, err := s.Pull(context.Background(), ref, nil)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want %q", ref, err, want)
		}
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Fatalf("refused pulls left %d images", len(imgs))
	}
	if layers, _ := s.snapshots.Layers(); len(layers) != 0 {
		t.Fatalf("refused pulls left %d layers", len(layers))
	}
}

// tarOfFile is a layer tar holding one file.
func tarOfFile(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(content))
	tw.Close()
	return buf.Bytes()
}
