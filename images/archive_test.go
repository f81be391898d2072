package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/test/fixtures"
)

// Export then import into another store: the same images, names and
// manifests, layers unpacked.
func TestExportImportRoundTrip(t *testing.T) {
	fixtures.RequireRoot(t)
	host := fixtures.Registry(t)
	ref := fixtures.PushBusybox(t, host)
	other := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"true"}}), host, "library/other:1")
	src := newService(t)
	ctx := context.Background()
	a, err := src.Pull(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := src.Pull(ctx, other, nil)
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	// By tag (exported under that name) and by ID (exported unnamed).
	if err := src.Export(ctx, &archive, ref, b.ID); err != nil {
		t.Fatal(err)
	}
	dst := newService(t)
	imgs, err := dst.Import(ctx, bytes.NewReader(archive.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[0].ID != a.ID || imgs[1].ID != b.ID {
		t.Fatalf("imported %+v", imgs)
	}
	if !slices.Equal(imgs[0].RepoTags, a.RepoTags) || len(imgs[1].RepoTags) != 0 {
		t.Fatalf("tags %v and %v, want %v and none", imgs[0].RepoTags, imgs[1].RepoTags, a.RepoTags)
	}
	if imgs[0].Manifest != a.Manifest {
		t.Fatalf("manifest %s, want %s", imgs[0].Manifest, a.Manifest)
	}
	if _, err := os.Lstat(filepath.Join(dst.snapshots.LayerPath(ChainIDsOf(imgs[0])[0]), "bin/busybox")); err != nil {
		t.Fatalf("layer not unpacked: %v", err)
	}
	// Importing again changes nothing; exporting an unknown image fails.
	if again, err := dst.Import(ctx, bytes.NewReader(archive.Bytes())); err != nil || len(again) != 2 {
		t.Fatalf("import again: %v", err)
	}
	if all, _ := dst.List(); len(all) != 2 {
		t.Fatalf("%d images after importing twice", len(all))
	}
	if err := src.Export(ctx, &bytes.Buffer{}, "nope:1"); !errdefs.IsNotFound(err) {
		t.Fatalf("export of an unknown image: %v", err)
	}
}

// skopeo, an independent implementation, reads what Export writes as both a
// docker archive and an OCI archive, and writes archives Import reads.
func TestArchivesWithSkopeo(t *testing.T) {
	fixtures.RequireRoot(t)
	skopeo := fixtures.RequireBinary(t, "skopeo")
	host := fixtures.Registry(t)
	ref := fixtures.PushBusybox(t, host)
	ctx := context.Background()
	s := newService(t)
	pulled, err := s.Pull(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(skopeo, args...).CombinedOutput(); err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	exported := filepath.Join(dir, "exported.tar")
	f, _ := os.Create(exported)
	if err := s.Export(ctx, f, ref); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run("copy", "docker-archive:"+exported, "oci:"+filepath.Join(dir, "from-docker"))
	run("copy", "oci-archive:"+exported, "oci:"+filepath.Join(dir, "from-oci"))

	run("copy", "--src-tls-verify=false", "docker://"+ref, "docker-archive:"+filepath.Join(dir, "d.tar")+":example.com/bb:docker")
	run("copy", "--src-tls-verify=false", "docker://"+ref, "oci-archive:"+filepath.Join(dir, "o.tar")+":example.com/bb:oci")
	fresh := newService(t)
	for file, tag := range map[string]string{"d.tar": "example.com/bb:docker", "o.tar": "example.com/bb:oci"} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := fresh.Import(ctx, f)
		f.Close()
		if err != nil {
			t.Fatalf("import %s: %v", file, err)
		}
		// skopeo rewrites the config when it converts to OCI: compare layers.
		if len(imgs) != 1 || !slices.Equal(imgs[0].Layers, pulled.Layers) || !slices.Contains(imgs[0].RepoTags, tag) {
			t.Fatalf("import %s: %+v", file, imgs)
		}
		if file == "d.tar" && imgs[0].ID != pulled.ID {
			t.Fatalf("import %s: ID %s, want %s", file, imgs[0].ID, pulled.ID)
		}
	}
}

// Archives that are not, or that lie, are clear errors and leave nothing.
func TestImportBadArchives(t *testing.T) {
	fixtures.RequireRoot(t)
	mk := func(files map[string]string) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, n := range slices.Sorted(func(yield func(string) bool) {
			for k := range files {
				if !yield(k) {
					return
				}
			}
		}) {
			tw.WriteHeader(&tar.Header{Name: n, Size: int64(len(files[n])), Mode: 0o644, Typeflag: tar.TypeReg})
			tw.Write([]byte(files[n]))
		}
		tw.Close()
		return b.Bytes()
	}
	s := newService(t)
	for name, c := range map[string]struct {
		archive []byte
		want    string
	}{
		"not a tar":      {[]byte("hello, not a tar archive at all, sorry"), "not a tar"},
		"no metadata":    {mk(map[string]string{"layer.tar": "x"}), "neither"},
		"legacy docker":  {mk(map[string]string{"repositories": "{}", "abc/layer.tar": "x"}), "1.10"},
		"missing layer":  {mk(map[string]string{"manifest.json": `[{"Config":"c.json","Layers":["l.tar"]}]`, "c.json": "{}"}), "l.tar"},
		"lying blob":     {mk(map[string]string{"index.json": `{"schemaVersion":2,"manifests":[]}`, "blobs/sha256/" + strings.Repeat("a", 64): "not that"}), "digest"},
		"empty index":    {mk(map[string]string{"index.json": `{"schemaVersion":2,"manifests":[]}`}), "no image"},
		"bad oci-layout": {mk(map[string]string{"index.json": `{"schemaVersion":2}`, "oci-layout": `{"imageLayoutVersion":"9"}`}), "oci-layout"},
	} {
		_, err := s.Import(context.Background(), bytes.NewReader(c.archive))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
		if name != "missing layer" && name != "lying blob" && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v is not an invalid argument", name, err)
		}
	}
	if blobs, _ := s.content.List(); len(blobs) != 0 {
		t.Fatalf("%d blobs left by failed imports", len(blobs))
	}
}
