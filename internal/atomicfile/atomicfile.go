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
func Write(path string, b []byte, mode os.FileMode) error { return write(path, b, mode, false) }

// WriteSynced is Write with the new content on disk before it replaces the
// old: for files read after a crash at any instant (the start-up sweep's),
// where a renamed but empty file would stop the reader.
func WriteSynced(path string, b []byte, mode os.FileMode) error { return write(path, b, mode, true) }

func write(path string, b []byte, mode os.FileMode, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	cerr := f.Chmod(mode)
	var serr error
	if sync && werr == nil {
		serr = f.Sync()
	}
	if err := errors.Join(werr, cerr, serr, f.Close()); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
