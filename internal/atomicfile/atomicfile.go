// Package atomicfile replaces files whole.
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
)

// Write replaces path with b, so that a reader sees the old or the new,
// never half of one; writers in other processes at once each use a
// temporary file of their own. It does not sync: for files under /run, or
// whose loss in a crash costs only a re-read.
func Write(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	cerr := f.Chmod(mode)
	if err := errors.Join(werr, cerr, f.Close()); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
