package builder

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// TestDockerfileErrors: a Dockerfile that does not parse, or names no
// stage, or a target it lacks, is refused before anything runs, with the
// line and the reason.
func TestDockerfileErrors(t *testing.T) {
	for _, tc := range []struct{ dockerfile, target, want string }{
		{"FROM busybox\nFROMM nothing\n", "", "line 2"},
		{"FROM busybox\nCOPY\n", "", "line 2"},
		{"# only a comment\n", "", "no instructions"},
		{"FROM busybox AS one\n", "two", "target two"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(tc.dockerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		b := &Builder{}
		_, err := b.Build(context.Background(), Options{ContextDir: dir, Target: tc.target, Out: io.Discard})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v; want an invalid-argument error naming %q", tc.dockerfile, err, tc.want)
		}
	}
	if _, err := (&Builder{}).Build(context.Background(), Options{ContextDir: t.TempDir(), Out: io.Discard}); err == nil || !strings.Contains(err.Error(), "Dockerfile") {
		t.Errorf("no Dockerfile: %v", err)
	}
}
