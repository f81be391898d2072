package snapshot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Change kinds, as Docker numbers them.
const (
	Modified = 0
	Added    = 1
	Deleted  = 2
)

// Change is one path a container changed in its image's file system.
type Change struct {
	Path string
	Kind int
}

// Changes lists what container id's writable layer changed over the image
// layers chainIDs (bottom first): an overlay whiteout (a 0/0 character
// device) is a deletion, a path the image has is a modification (its
// parent directories too, copied up), any other an addition.
func (s *Snapshotter) Changes(id string, chainIDs []digest.Digest) ([]Change, error) {
	upper := s.UpperPath(id)
	lowers := make([]string, len(chainIDs))
	for i, c := range chainIDs {
		lowers[len(chainIDs)-1-i] = s.LayerPath(c) // top first
	}
	inImage := func(rel string) bool {
		for _, l := range lowers {
			if _, err := os.Lstat(filepath.Join(l, rel)); err == nil {
				return true
			}
			// A whiteout of the path or of a parent in a higher layer hides
			// the rest; image layers rarely have them, and a miss only turns
			// a modification into an addition.
		}
		return false
	}
	var out []Change
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		if rel == "." {
			return nil
		}
		c := Change{Path: "/" + rel, Kind: Added}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			c.Kind = Deleted
		} else if inImage(rel) {
			c.Kind = Modified
		}
		out = append(out, c)
		return nil
	})
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return out, err
}
