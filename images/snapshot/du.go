package snapshot

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// du counts allocated blocks, as du(1) does, and every inode once (a file
// with hard links once, a symlink as itself).
//
// It walks by directory descriptors (openat, getdents, fstatat): kubelet's
// stats ask for every container's writable layer every few seconds, and
// filepath.WalkDir's path building and cleaning cost more than the system
// calls at a thousand containers.
func du(dir string) (Usage, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if errors.Is(err, unix.ENOENT) {
		return Usage{}, nil
	}
	if err != nil {
		return Usage{}, fmt.Errorf("measure %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return Usage{}, fmt.Errorf("measure %s: %w", dir, err)
	}
	w := duWalk{u: Usage{Inodes: 1, Bytes: uint64(st.Blocks) * 512}, buf: make([]byte, 8192)}
	if err := w.dir(fd); err != nil {
		return Usage{}, fmt.Errorf("measure %s: %w", dir, err)
	}
	return w.u, nil
}

type duWalk struct {
	u   Usage
	buf []byte
	// linked are the inodes with more than one link seen: only those can
	// come again, so only those are remembered.
	linked map[uint64]bool
}

// dir counts the entries of the open directory fd, and closes it.
func (w *duWalk) dir(fd int) error {
	defer unix.Close(fd)
	var names []string
	for {
		n, err := unix.Getdents(fd, w.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return nil
		}
		// The names are copied out before a subdirectory reuses buf.
		_, _, names = unix.ParseDirent(w.buf[:n], -1, names[:0])
		for _, name := range names {
			var st unix.Stat_t
			if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				continue // raced with a removal
			}
			isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
			if !isDir && st.Nlink > 1 {
				if w.linked[st.Ino] {
					continue
				}
				if w.linked == nil {
					w.linked = map[uint64]bool{}
				}
				w.linked[st.Ino] = true
			}
			w.u.Inodes++
			w.u.Bytes += uint64(st.Blocks) * 512
			if !isDir {
				continue
			}
			child, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := w.dir(child); err != nil {
				return fmt.Errorf("%s/%w", name, err)
			}
		}
	}
}
