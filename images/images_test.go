package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/test/fixtures"
)

func newService(t *testing.T) *Service {
	t.Helper()
	root := t.TempDir()
	db, err := store.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := New(db, root, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPullUnpackResolve(t *testing.T) {
	fixtures.RequireRoot(t)
	host := fixtures.Registry(t)
	ref := fixtures.PushBusybox(t, host)
	s := newService(t)
	ctx := context.Background()

	img, err := s.Pull(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(img.ID, "sha256:") || len(img.ChainIDs) != 1 || img.Size <= 0 {
		t.Fatalf("image record: %+v", img)
	}
	if want := host + "/library/busybox:latest"; len(img.RepoTags) != 1 || img.RepoTags[0] != want {
		t.Fatalf("repo tags %v, want %s", img.RepoTags, want)
	}
	layer := s.snapshots.LayerPath(ChainIDsOf(img)[0])
	// The fixture's applets are hard links to busybox, as in Docker Hub's image.
	sh, err1 := os.Lstat(filepath.Join(layer, "bin/sh"))
	bb, err2 := os.Lstat(filepath.Join(layer, "bin/busybox"))
	if err1 != nil || err2 != nil || !os.SameFile(sh, bb) {
		t.Fatalf("bin/sh not unpacked as a hard link of bin/busybox: %v %v", err1, err2)
	}
	for _, name := range []string{img.ID, strings.TrimPrefix(img.ID, "sha256:"), ref, img.RepoDigests[0]} {
		got, err := s.Resolve(name)
		if err != nil || got.ID != img.ID {
			t.Errorf("Resolve(%q) = %v, %v", name, got.ID, err)
		}
	}
	cfg, err := Config(img)
	if err != nil || len(cfg.Config.Cmd) != 1 || cfg.Config.Cmd[0] != "sh" {
		t.Fatalf("config: %+v %v", cfg.Config, err)
	}
	// A second pull finds everything in place and keeps one record.
	if _, err := s.Pull(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.List(); len(all) != 1 {
		t.Fatalf("%d images after pulling twice", len(all))
	}
}

func TestPullErrors(t *testing.T) {
	fixtures.RequireRoot(t)
	host := fixtures.Registry(t)
	s := newService(t)
	ctx := context.Background()
	if _, err := s.Pull(ctx, "UPPER/case::bad", nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad reference: %v", err)
	}
	_, err := s.Pull(ctx, host+"/library/missing:1", nil)
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing image: %v", err)
	}
	if _, err := s.Resolve("nope:latest"); !errdefs.IsNotFound(err) {
		t.Errorf("resolve unknown: %v", err)
	}
}

func TestMountContainerRootfs(t *testing.T) {
	fixtures.RequireRoot(t)
	host := fixtures.Registry(t)
	s := newService(t)
	img, err := s.Pull(context.Background(), fixtures.PushBusybox(t, host), nil)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "rootfs")
	if err := s.snapshots.Mount("c1", ChainIDsOf(img), target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.snapshots.Unmount("c1", target) })
	if err := os.WriteFile(filepath.Join(target, "etc/new"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Writes land in the container's upper layer, never in the image's.
	if _, err := os.Stat(filepath.Join(s.snapshots.UpperPath("c1"), "etc/new")); err != nil {
		t.Fatal("write did not land in the upper layer")
	}
	if _, err := os.Stat(filepath.Join(s.snapshots.LayerPath(ChainIDsOf(img)[0]), "etc/new")); err == nil {
		t.Fatal("write reached the image layer")
	}
	if err := s.snapshots.Unmount("c1", target); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "bin")); err == nil {
		t.Fatal("still mounted after Unmount")
	}
}

func TestConcurrentPullsShareDownloads(t *testing.T) {
	fixtures.RequireRoot(t)
	host, gets := fixtures.CountingRegistry(t)
	ref := fixtures.PushBusybox(t, host)
	s := newService(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Pull(context.Background(), ref, nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	img, err := s.Resolve(ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range img.Blobs[2:] { // [0] is the manifest and [1] the config, which each pull reads
		if n := gets.Count(b); n != 1 {
			t.Errorf("layer %s downloaded %d times by 4 concurrent pulls", b, n)
		}
	}
}

func TestPullProgress(t *testing.T) {
	fixtures.RequireRoot(t)
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	s := newService(t)
	var last Progress
	complete := 0
	_, err := s.PullWith(context.Background(), ref, PullOptions{Progress: func(p Progress) {
		if p.AllDone < last.AllDone {
			t.Errorf("progress went back: %d after %d", p.AllDone, last.AllDone)
		}
		last = p
		if p.Complete {
			complete++
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if last.AllSize == 0 || last.AllDone != last.AllSize || complete != 1 {
		t.Fatalf("last progress %+v, %d layers complete", last, complete)
	}
}

// A pull cut off mid-download leaves no blob, layer or record; and what a
// killed berthd leaves half-written is gone when the store opens again.
func TestInterruptedPullLeavesNothing(t *testing.T) {
	fixtures.RequireRoot(t)
	backend := fixtures.Registry(t)
	ref := fixtures.PushBusybox(t, backend)
	// A front that lets manifests through but stalls blobs after a few bytes.
	stalled := make(chan struct{})
	front := fixtures.Front(t, backend, nil, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, configDigest(t, ref)) {
			w.WriteHeader(http.StatusOK)
			w.Write(make([]byte, 1000))
			w.(http.Flusher).Flush()
			close(stalled)
			<-r.Context().Done()
			return
		}
		next.ServeHTTP(w, r)
	})

	root := t.TempDir()
	db, err := store.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(db, root, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-stalled; cancel() }()
	if _, err := s.Pull(ctx, front+"/library/busybox:latest", nil); err == nil {
		t.Fatal("the interrupted pull succeeded")
	}
	for _, d := range []string{"content/ingest", "snapshots/tmp", "snapshots/layers"} {
		if ents, _ := os.ReadDir(filepath.Join(root, d)); len(ents) != 0 {
			t.Errorf("%s holds %d entries after the interrupted pull", d, len(ents))
		}
	}
	if all, _ := s.List(); len(all) != 0 {
		t.Errorf("%d images recorded", len(all))
	}
	// As a killed berthd would leave them: reopening the store removes them.
	os.WriteFile(filepath.Join(root, "content/ingest/abc-123"), []byte("half"), 0o600)
	os.MkdirAll(filepath.Join(root, "snapshots/tmp/layer-123/etc"), 0o755)
	if _, err := New(db, root, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"content/ingest", "snapshots/tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(root, d)); len(ents) != 0 {
			t.Errorf("%s holds %d entries after a restart", d, len(ents))
		}
	}
}

func configDigest(t *testing.T, ref string) string {
	t.Helper()
	r, _ := name.ParseReference(ref, name.Insecure)
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.ConfigName()
	return d.String()
}

// Whiteouts and opaque directories, seen through the mounted overlay: a
// file deleted by an upper layer is gone, an opaque directory shows only
// the upper layer's entries, and a file deleted then added again is back.
func TestWhiteoutsThroughOverlay(t *testing.T) {
	fixtures.RequireRoot(t)
	host := fixtures.Registry(t)
	layer := func(entries ...[2]string) v1.Layer {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, e := range entries {
			if strings.HasSuffix(e[0], "/") {
				tw.WriteHeader(&tar.Header{Name: e[0], Typeflag: tar.TypeDir, Mode: 0o755})
				continue
			}
			tw.WriteHeader(&tar.Header{Name: e[0], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e[1]))})
			tw.Write([]byte(e[1]))
		}
		tw.Close()
		return fixtures.Layer(t, b.Bytes())
	}
	img, err := mutate.AppendLayers(fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}}),
		layer([2]string{"data/", ""}, [2]string{"data/gone", "1"}, [2]string{"data/kept", "2"}, [2]string{"data/back", "old"},
			[2]string{"opaque/", ""}, [2]string{"opaque/old", "3"}, [2]string{"opaque/sub/", ""}, [2]string{"opaque/sub/deep", "4"}),
		layer([2]string{"data/.wh.gone", ""}, [2]string{"data/.wh.back", ""}, [2]string{"opaque/.wh..wh..opq", ""}, [2]string{"opaque/new", "5"}),
		layer([2]string{"data/back", "new"}))
	if err != nil {
		t.Fatal(err)
	}
	ref := fixtures.Push(t, img, host, "library/whiteouts:1")
	s := newService(t)
	rec, err := s.Pull(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "rootfs")
	if err := s.snapshots.Mount("w1", ChainIDsOf(rec), target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.snapshots.Unmount("w1", target) })
	ls := func(dir string) []string {
		ents, err := os.ReadDir(filepath.Join(target, dir))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	if got := ls("data"); !slices.Equal(got, []string{"back", "kept"}) {
		t.Errorf("data holds %v, want [back kept]", got)
	}
	if got := ls("opaque"); !slices.Equal(got, []string{"new"}) {
		t.Errorf("the opaque directory holds %v, want [new]", got)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "data/back")); string(b) != "new" {
		t.Errorf("data/back reads %q, want the re-added \"new\"", b)
	}
}
