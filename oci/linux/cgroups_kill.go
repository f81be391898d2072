package linux

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SignalCgroup sends sig to every process of the container's cgroup: how a
// container is asked to stop when its shim cannot do it.
func SignalCgroup(cgroupsPath string, sig syscall.Signal) error {
	l, err := detectCgroupLayout()
	if err != nil {
		return err
	}
	pids, err := l.paths(cgroupsPath).procs()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cgroup %s: %w", cgroupsPath, err)
	}
	for _, pid := range pids {
		_ = unix.Kill(pid, sig)
	}
	return nil
}

// CgroupEmpty says whether no process is left in the container's cgroup (a
// cgroup that is gone is empty).
func CgroupEmpty(cgroupsPath string) (bool, error) {
	l, err := detectCgroupLayout()
	if err != nil {
		return false, err
	}
	pids, err := l.paths(cgroupsPath).procs()
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	return len(pids) == 0, err
}

// KillCgroup ends every process of the container's cgroup with no help from
// the runtime or the shim, and returns once the kernel says none is left (or
// an error after wait).
func KillCgroup(cgroupsPath string, wait time.Duration) error {
	l, err := detectCgroupLayout()
	if err != nil {
		return err
	}
	if err := l.paths(cgroupsPath).killAll(wait); err != nil {
		return fmt.Errorf("kill cgroup %s: %w", cgroupsPath, err)
	}
	return nil
}

// killAll uses cgroup.kill where the kernel has it (cgroup2, 5.14+: every
// process of the subtree, atomically). Otherwise the cgroup is frozen, so that
// no process can fork a new one between the listing and the signals, every
// process is sent SIGKILL, and it is thawed for the signals to be delivered.
func (p CgroupPaths) killAll(wait time.Duration) error {
	if p.Unified != "" {
		if err := writeCgroupFile(p.Unified, "cgroup.kill", "1"); err == nil {
			return p.waitEmpty(wait)
		} else if errors.Is(err, os.ErrNotExist) && !dirExists(p.Unified) {
			return nil // no cgroup, no process
		}
	}
	return p.killFrozen(wait)
}

func (p CgroupPaths) killFrozen(wait time.Duration) error {
	pids, err := p.procs()
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	frozen := p.freeze(true) == nil
	if pids, err = p.procs(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	if frozen {
		if err := p.freeze(false); err != nil {
			return err
		}
	}
	return p.waitEmpty(wait)
}

// waitEmpty polls until the cgroup lists no process.
func (p CgroupPaths) waitEmpty(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		pids, err := p.procs()
		if errors.Is(err, os.ErrNotExist) || (err == nil && len(pids) == 0) {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("%d processes still there after %v: %v", len(pids), wait, pids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
