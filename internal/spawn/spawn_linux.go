// Package spawn starts berthd's child processes (shims, CNI plugins) from
// one OS thread that lives as long as berthd and has a file descriptor
// table of its own, nearly empty.
//
// Why a table of its own: a fork copies the forking thread's table and the
// exec then closes every close-on-exec file in the copy. berthd keeps the
// cgroup stat files of every pod open (oci/linux's StatFiles: ~9 a pod),
// and at a thousand pods that copy and close cost 1.6 ms an exec, measured
// (the kernel's do_close_on_exec, filp_flush). Why one lasting thread:
// PDEATHSIG fires when the thread that forked a child ends, not berthd, and
// Go ends threads whose goroutine exits locked to them, as berthd's
// namespace work does.
//
// The files a child gets are copied into the thread's table with
// pidfd_getfd(2), the same open files, not reopened. Where the kernel
// cannot (before Linux 5.6, or unshare refused) the thread forks from the
// process's table, as os/exec would.
package spawn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Cmd is a process to start.
type Cmd struct {
	// Path is the binary, Args its argv (Args[0] included).
	Path string
	Args []string
	Env  []string
	Dir  string
	// Files are the child's descriptors 0, 1, 2, 3 and on; nil is /dev/null.
	Files []*os.File
	Sys   *syscall.SysProcAttr
}

// Spawner starts processes from its thread. A nil *Spawner starts them from
// the caller's thread and the process's table.
type Spawner struct {
	reqs chan func()
	// self is berthd's pidfd, whose table pidfd_getfd copies files from;
	// -1 when the thread shares the process's table.
	self int
}

// New starts the spawner's thread. Call it early, while berthd has few
// files open: the thread's table starts as a copy of the process's, and it
// closes what it copied (bar stdio and the Go runtime's poller) so that no
// file berthd closes stays open in it.
func New() *Spawner {
	// The Go runtime's poller must exist before the copy: the thread uses
	// it (timers wake it) under the same descriptor numbers.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	s := &Spawner{reqs: make(chan func()), self: -1}
	ready := make(chan struct{})
	go s.run(ready)
	<-ready
	return s
}

func (s *Spawner) run(ready chan struct{}) {
	runtime.LockOSThread() // never unlocked: the thread lasts while berthd runs
	if unix.Gettid() == unix.Getpid() {
		// The main thread's table is the one /proc/<pid>/fd shows and
		// pidfd_getfd copies from; it must stay the process's. Locked
		// here, the main thread cannot run the goroutine that takes over.
		go s.run(ready)
		<-ready
		runtime.UnlockOSThread()
		return
	}
	s.self = privateTable()
	close(ready)
	for f := range s.reqs {
		f()
	}
}

// privateTable gives the calling thread a table of its own and empties it
// of what the copy brought, returning berthd's pidfd; -1 when it cannot
// (the thread then shares the process's table).
func privateTable() int {
	self, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return -1
	}
	// Without pidfd_getfd no file could reach a table of its own.
	probe, err := unix.PidfdGetfd(self, self, 0)
	if err != nil {
		unix.Close(self)
		return -1
	}
	unix.Close(probe)
	if err := unix.Unshare(unix.CLONE_FILES); err != nil {
		unix.Close(self)
		return -1
	}
	ents, err := os.ReadDir("/proc/thread-self/fd")
	if err != nil {
		return self
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 || fd == self {
			continue
		}
		link, _ := os.Readlink("/proc/thread-self/fd/" + e.Name())
		if strings.HasPrefix(link, "anon_inode:[event") { // eventpoll, eventfd: the runtime's poller
			continue
		}
		unix.Close(fd)
	}
	return self
}

// Start starts c and returns its process, which the caller waits for.
func (s *Spawner) Start(c Cmd) (*os.Process, error) {
	// The descriptors' numbers are taken here, in the process's table:
	// Fd also makes a pipe blocking, as the child expects, which on the
	// spawner's thread would change whatever its table has at that number.
	// -1 stands for /dev/null.
	nums := make([]int, len(c.Files))
	for i, f := range c.Files {
		nums[i] = -1
		if f != nil {
			nums[i] = int(f.Fd())
		}
	}
	var pid int
	var err error
	if s == nil {
		pid, err = forkExec(c, nums, -1)
	} else {
		done := make(chan struct{})
		s.reqs <- func() {
			pid, err = forkExec(c, nums, s.self)
			close(done)
		}
		<-done
	}
	runtime.KeepAlive(c.Files) // their descriptors were used by number
	if err != nil {
		return nil, err
	}
	// Here, not on the spawner's thread: the pidfd it opens belongs in the
	// process's table.
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("start %s: %w", c.Path, err), unix.Kill(pid, unix.SIGKILL))
	}
	return p, nil
}

// forkExec forks and execs c with the process's descriptors nums (-1:
// /dev/null) as its 0, 1, 2...; with self ≥ 0 it runs on the spawner's
// thread and copies them into its table first.
func forkExec(c Cmd, nums []int, self int) (int, error) {
	fds := make([]uintptr, len(nums))
	var opened []int
	defer func() {
		for _, fd := range opened {
			unix.Close(fd)
		}
	}()
	for i, n := range nums {
		var fd int
		var err error
		switch {
		case n < 0:
			fd, err = unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0)
		case self >= 0:
			fd, err = unix.PidfdGetfd(self, n, 0)
		default:
			fds[i] = uintptr(n)
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("start %s: descriptor %d: %w", c.Path, i, err)
		}
		opened = append(opened, fd)
		fds[i] = uintptr(fd)
	}
	pid, err := syscall.ForkExec(c.Path, c.Args, &syscall.ProcAttr{Dir: c.Dir, Env: c.Env, Files: fds, Sys: c.Sys})
	if err != nil {
		return 0, &os.PathError{Op: "fork/exec", Path: c.Path, Err: err}
	}
	return pid, nil
}

// Run runs c with in on its stdin and returns what it wrote on stdout and
// stderr; c.Files is replaced by the pipes. ctx's end kills it. A process
// that exits non-zero returns an *exec.ExitError.
func (s *Spawner) Run(ctx context.Context, c Cmd, in []byte) (stdout, stderr []byte, err error) {
	var pipes [6]*os.File // stdin r/w, stdout r/w, stderr r/w
	defer func() {
		for _, f := range pipes {
			if f != nil {
				f.Close()
			}
		}
	}()
	for i := 0; i < len(pipes); i += 2 {
		if pipes[i], pipes[i+1], err = os.Pipe(); err != nil {
			return nil, nil, fmt.Errorf("start %s: %w", c.Path, err)
		}
	}
	c.Files = []*os.File{pipes[0], pipes[3], pipes[5]}
	p, err := s.Start(c)
	for _, i := range []int{0, 3, 5} { // the child's ends
		pipes[i].Close()
		pipes[i] = nil
	}
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = p.Kill() })
	defer stop()
	var wg sync.WaitGroup
	var outb, errb bytes.Buffer
	w := pipes[1]
	pipes[1] = nil
	wg.Go(func() {
		_, _ = w.Write(in) // a child that does not read fails on its own
		w.Close()
	})
	wg.Go(func() { _, _ = outb.ReadFrom(pipes[2]) })
	wg.Go(func() { _, _ = errb.ReadFrom(pipes[4]) })
	wg.Wait()
	st, err := p.Wait()
	if err != nil {
		return outb.Bytes(), errb.Bytes(), fmt.Errorf("wait for %s: %w", c.Path, err)
	}
	if !st.Success() {
		err = &exec.ExitError{ProcessState: st}
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
	}
	return outb.Bytes(), errb.Bytes(), err
}
