package images

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/test/fixtures"
)

func TestRemoveAndGC(t *testing.T) {
	fixtures.RequireRoot(t)
	host := fixtures.Registry(t)
	base := fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}})
	extra, err := random.Layer(4096, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	child, err := mutate.AppendLayers(base, extra)
	if err != nil {
		t.Fatal(err)
	}
	refA := fixtures.Push(t, base, host, "library/base:1")
	refB := fixtures.Push(t, child, host, "library/child:1")
	s := newService(t)
	ctx := context.Background()
	a, err := s.Pull(ctx, refA, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Pull(ctx, refB, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A second tag on the base image: removing one tag only untags.
	fixtures.Push(t, base, host, "library/base:2")
	if _, err := s.Pull(ctx, host+"/library/base:2", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, refA, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Resolve(host + "/library/base:2"); err != nil || got.ID != a.ID {
		t.Fatalf("untag removed the image: %v", err)
	}
	if _, err := s.Resolve(refA); !errdefs.IsNotFound(err) {
		t.Fatalf("tag still resolves: %v", err)
	}

	// In use: refused.
	used := func(id string) (string, bool) { return "c1", id == b.ID }
	if err := s.Remove(ctx, b.ID, used); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("removing an image in use: %v", err)
	}
	// Removing the child keeps the base layer the other image shares.
	if err := s.Remove(ctx, b.ID, nil); err != nil {
		t.Fatal(err)
	}
	shared := ChainIDsOf(b)[0]
	own := ChainIDsOf(b)[1]
	if !s.snapshots.HasLayer(shared) {
		t.Fatal("GC removed a layer another image uses")
	}
	if s.snapshots.HasLayer(own) {
		t.Fatal("GC kept a layer no image uses")
	}
	if err := s.Remove(ctx, a.ID, nil); err != nil {
		t.Fatal(err)
	}
	if layers, _ := s.snapshots.Layers(); len(layers) != 0 {
		t.Fatalf("%d layers left after removing every image", len(layers))
	}
	if blobs, _ := s.content.List(); len(blobs) != 0 {
		t.Fatalf("%d blobs left after removing every image", len(blobs))
	}
	// Removing again is not an error.
	if err := s.Remove(ctx, a.ID, nil); err != nil {
		t.Fatalf("second remove: %v", err)
	}
}
