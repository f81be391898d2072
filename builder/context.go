package builder

import (
	"fmt"
	"io"
	"os"

	"github.com/moby/go-archive"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// UnpackContext unpacks a build context sent as a tar into a directory of
// its own, for Options.ContextDir; remove removes it.
func UnpackContext(r io.Reader) (dir string, remove func(), err error) {
	dir, err = os.MkdirTemp("", "berth-build-context-")
	if err != nil {
		return "", nil, err
	}
	remove = func() { _ = os.RemoveAll(dir) }
	if err := archive.Untar(r, dir, &archive.TarOptions{NoLchown: true}); err != nil {
		remove()
		return "", nil, fmt.Errorf("the build context is not a readable tar: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return dir, remove, nil
}
