package linux

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// statFilesIdle is how long a stat file nobody read stays open: kubelet
// reads every pod's every few seconds, and a removed container's go.
const statFilesIdle = time.Minute

// StatFiles keeps the cgroup files kubelet's stats read every few seconds
// (CPU time, memory, swap, tasks) open between reads, and reads them again
// from their start. Opening a cgroup file and closing it cost twice its
// read: at a thousand pods, ten thousand opens a ListPodSandboxStats. The
// price is the kernel's: an open file and its seq_file page, ~4 KB, for
// each (4 or 5 a cgroup); a file unread for a minute is closed, and one
// whose cgroup went (a stale file reads ENODEV) is opened anew. It holds a
// quarter of the open-files limit at most; past that, reads open and close.
// A nil *StatFiles opens each file for each read.
type StatFiles struct {
	mu    sync.Mutex
	files map[string]*statFile
	swept time.Time
	open  atomic.Int64
	max   int64
}

type statFile struct {
	mu   sync.Mutex // held across a read: a close waits for it, no fd number is reused under it
	fd   int        // -1 once closed
	used time.Time
	gone bool // swept from the set: a reader that held it reads uncached
}

// NewStatFiles returns an empty set of open stat files.
func NewStatFiles() *StatFiles {
	f := &StatFiles{files: map[string]*statFile{}, max: 256}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur/4 > uint64(f.max) {
		f.max = int64(min(lim.Cur/4, 1<<20))
	}
	return f
}

// read reads the file at path into buf.
func (f *StatFiles) read(path string, buf []byte) ([]byte, error) {
	if f == nil {
		return readStatFile(path, buf)
	}
	e := f.entry(path)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone {
		return readStatFile(path, buf)
	}
	e.used = time.Now()
	if e.fd >= 0 {
		if b, err := preadStatFile(e.fd, path, buf); err == nil {
			return b, nil
		}
		// The cgroup went, or went and came again under the same name.
		f.close(e)
	}
	if f.open.Add(1) > f.max {
		f.open.Add(-1)
		return readStatFile(path, buf)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		f.open.Add(-1)
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	e.fd = fd
	return preadStatFile(fd, path, buf)
}

// close closes e's file; e.mu is held.
func (f *StatFiles) close(e *statFile) {
	if e.fd >= 0 {
		unix.Close(e.fd)
		e.fd = -1
		f.open.Add(-1)
	}
}

// entry is path's record, made on first use; once a minute the files
// unread for a minute are closed. It only tries the records' locks: a
// reader holds its record's while it opens or closes (taking f.mu inside).
func (f *StatFiles) entry(path string) *statFile {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.swept) > statFilesIdle {
		f.swept = now
		for p, e := range f.files {
			if e.mu.TryLock() {
				if now.Sub(e.used) > statFilesIdle {
					f.close(e)
					e.gone = true
					delete(f.files, p)
				}
				e.mu.Unlock()
			}
		}
	}
	e := f.files[path]
	if e == nil {
		e = &statFile{fd: -1}
		f.files[path] = e
	}
	return e
}

// Open is how many files f holds open.
func (f *StatFiles) Open() int { return int(f.open.Load()) }
