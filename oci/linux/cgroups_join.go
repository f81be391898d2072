package linux

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// cgroupTasksEnv lists the fds of the v1 "tasks" files the nsenter
// constructor writes "0" to (see nsenter.c).
const cgroupTasksEnv = "_BERTH_CGROUP_TASKS"

// cgroupJoin lets a process the runtime starts (a container's init, an
// exec's intermediate) begin inside the container's cgroups instead of
// being moved there once running. A move of another process — its PID
// written to cgroup.procs — takes the kernel's global threadgroup rwsem for
// writing, which after a quiet spell waits out an RCU grace period: 4–9 ms
// on the development VM, most of what an exec cost. The two ways in that do
// not take it for writing:
//   - v2: clone3(CLONE_INTO_CGROUP) with the cgroup's directory;
//   - v1: a single-threaded process writing "0" (itself) to each
//     hierarchy's "tasks" file moves only itself, without that lock; the
//     nsenter constructor does so before the Go runtime starts threads.
type cgroupJoin struct {
	dir   *os.File   // v2
	tasks []*os.File // v1, one per hierarchy
}

// openJoin opens p's files for a join. Without the nsenter constructor
// (a build without cgo) v1 has no way in but a move: nil then.
func (p CgroupPaths) openJoin(nsenter bool) (*cgroupJoin, error) {
	if p.Unified != "" {
		fd, err := unix.Open(p.Unified, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("cgroup: open %s: %w", p.Unified, err)
		}
		return &cgroupJoin{dir: os.NewFile(uintptr(fd), p.Unified)}, nil
	}
	if !nsenter {
		return nil, nil
	}
	j := &cgroupJoin{}
	for _, d := range p.dirs() {
		f, err := os.OpenFile(filepath.Join(d, "tasks"), os.O_WRONLY, 0)
		if err != nil {
			j.Close()
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		j.tasks = append(j.tasks, f)
	}
	return j, nil
}

// Close closes the parent's copies of the files.
func (j *cgroupJoin) Close() {
	if j == nil {
		return
	}
	if j.dir != nil {
		j.dir.Close()
	}
	for _, f := range j.tasks {
		f.Close()
	}
}

// start starts cmd (through startFn, which may wrap cmd.Start) so that its
// process begins in the cgroup, and says whether it did: when it did not
// (no join, or a kernel without clone3's CLONE_INTO_CGROUP), the caller
// moves the process with addProc. The tasks files go last in ExtraFiles,
// after any fd numbers the caller has already promised the child.
func (j *cgroupJoin) start(cmd *exec.Cmd, startFn func(*exec.Cmd) error) (joined bool, err error) {
	switch {
	case j == nil:
		return false, startFn(cmd)
	case len(j.tasks) > 0:
		fds := make([]string, len(j.tasks))
		for i, f := range j.tasks {
			fds[i] = strconv.Itoa(3 + len(cmd.ExtraFiles))
			cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		}
		cmd.Env = append(cmd.Env, cgroupTasksEnv+"="+strings.Join(fds, ","))
		return true, startFn(cmd)
	}
	plain := *cmd // never started: a copy for the fallback
	attr := syscall.SysProcAttr{}
	if cmd.SysProcAttr != nil {
		attr = *cmd.SysProcAttr
	}
	attr.UseCgroupFD, attr.CgroupFD = true, int(j.dir.Fd())
	cmd.SysProcAttr = &attr
	err = startFn(cmd)
	if err == nil {
		return true, nil
	}
	// clone3 missing (before 5.3) or without CLONE_INTO_CGROUP (before 5.7).
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.E2BIG) || errors.Is(err, unix.EINVAL) {
		*cmd = plain
		return false, startFn(cmd)
	}
	return false, err
}
