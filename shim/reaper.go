package shim

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/oci/linux"
)

// reaper reaps the orphans the shim adopts as a subreaper: processes of
// "exec" whose runtime process died first, say. They must not stay zombies:
// a dying container init waits until every process of its PID namespace has
// been reaped. Children the shim started itself are left to os/exec, which
// waits for them by PID: they are registered between Start and Wait, under
// the same lock the reaper holds while it decides.
type reaper struct {
	mu    sync.Mutex
	owned map[int]bool // PIDs someone else waits for: commands, and the init
	// holds > 0 pauses reaping: a detached exec's process becomes our child
	// before we know its PID (from the pid file) and can own it.
	holds int
}

// hold pauses reaping until the matching release.
func (r *reaper) hold() {
	r.mu.Lock()
	r.holds++
	r.mu.Unlock()
}

func (r *reaper) release() {
	r.mu.Lock()
	r.holds--
	r.mu.Unlock()
	r.reapOrphans()
}

// disown hands pid back to the reaper once its owner has waited for it.
func (r *reaper) disown(pid int) {
	r.mu.Lock()
	delete(r.owned, pid)
	r.mu.Unlock()
}

func newReaper() *reaper { return &reaper{owned: map[int]bool{}} }

// own marks pid as waited for by someone else.
func (r *reaper) own(pid int) {
	r.mu.Lock()
	r.owned[pid] = true
	r.mu.Unlock()
}

// run starts cmd, registered, and waits for it.
func (r *reaper) run(cmd *exec.Cmd) error {
	if err := r.start(cmd); err != nil {
		return err
	}
	return r.wait(cmd)
}

func (r *reaper) start(cmd *exec.Cmd) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	r.owned[cmd.Process.Pid] = true
	return nil
}

func (r *reaper) wait(cmd *exec.Cmd) error {
	err := cmd.Wait()
	r.mu.Lock()
	delete(r.owned, cmd.Process.Pid)
	r.mu.Unlock()
	return err
}

// reapOrphans waits for every zombie child nobody else waits for.
func (r *reaper) reapOrphans() {
	// Most SIGCHLDs are for commands whose owners have reaped them by now
	// (each exec's runtime process): no zombie left, nothing to look for.
	if !zombieChild() {
		return
	}
	// The list is read without the lock, which an exec's owner needs to
	// finish: every candidate is decided under it.
	candidates := children()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.holds > 0 {
		return
	}
	for _, pid := range candidates {
		if r.owned[pid] || !isZombie(pid) {
			continue
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// zombieChild says whether any child has exited and is not yet reaped; it
// reaps none.
func zombieChild() bool {
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil {
		return false // ECHILD: no children at all
	}
	return info.Signo != 0 // Linux zeroes it when no child is waitable
}

// children lists our child processes, from every thread's children file.
func children() []int {
	tasks, _ := os.ReadDir("/proc/self/task")
	var out []int
	for _, t := range tasks {
		b, err := linux.ReadSmallFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

func isZombie(pid int) bool {
	b, err := linux.ReadSmallFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'Z'
}

// exitCode is a process's exit code as the CRI and docker report it: its
// status, or 128 + the signal that killed it.
func exitCode(ws unix.WaitStatus) int32 {
	if ws.Signaled() {
		return 128 + int32(ws.Signal())
	}
	return int32(ws.ExitStatus())
}

// exitErrorCode is exitCode for a command os/exec waited for.
func exitErrorCode(ee *exec.ExitError) int32 {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
		return exitCode(unix.WaitStatus(ws))
	}
	return int32(ee.ExitCode())
}
