package images

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-runtime/berth/internal/store"
)

// At berthd's start, a lazy layer no image has (its pull was cut short) is
// removed without a server; one an image has, whose server is gone, gets a
// server again (here a stand-in that notes its call and fails: the layer
// is then removed too, for the next pull to fetch).
func TestReviveLazyLayers(t *testing.T) {
	s := newService(t)
	calls := filepath.Join(t.TempDir(), "calls")
	server := filepath.Join(t.TempDir(), "berth-lazyfs")
	if err := os.WriteFile(server, []byte("#!/bin/sh\necho \"$@\" >> "+calls+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.SetLazyPulls(server)
	orphan, kept := digest.FromString("orphan"), digest.FromString("kept")
	for _, c := range []digest.Digest{orphan, kept} {
		os.MkdirAll(s.snapshots.LazyDir(c), 0o700)
		os.WriteFile(filepath.Join(s.snapshots.LazyDir(c), LazyConfigFile), []byte("{}"), 0o600)
		os.MkdirAll(s.snapshots.LayerPath(c), 0o755)
	}
	if _, err := s.record(store.Image{ID: digest.FromString("img").String(), ChainIDs: []string{kept.String()}}); err != nil {
		t.Fatal(err)
	}
	s.ReviveLazyLayers(t.Context())
	b, _ := os.ReadFile(calls)
	if strings.Contains(string(b), orphan.Encoded()) || !strings.Contains(string(b), s.snapshots.LazyDir(kept)) {
		t.Fatalf("servers started for: %q; want one for the kept layer alone", b)
	}
	for _, c := range []digest.Digest{orphan, kept} {
		if s.snapshots.IsLazy(c) || s.snapshots.HasLayer(c) {
			t.Errorf("layer %s is still there", c)
		}
	}
}
