package linux

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"
)

// ReportedError is a failure the init has already told its parent about:
// printing it too would put it in the container's output.
type ReportedError struct{ error }

func (e ReportedError) Unwrap() error { return e.error }

// Init is the container's init process: the re-executed berth-runtime.
// It must run on the main thread, locked (cmd/berth-runtime locks it in
// init()), because namespaces, credentials and capabilities set here belong
// to the thread that finally calls execve. It returns only on failure.
func Init() error {
	fd, err := strconv.Atoi(os.Getenv(initSyncEnv))
	if err != nil {
		return fmt.Errorf("%s not set: berth-runtime init is not meant to be run by hand", initSyncEnv)
	}
	os.Unsetenv(initSyncEnv)
	os.Unsetenv("GOMAXPROCS") // set by Create for this process alone, not its hooks
	sock := os.NewFile(uintptr(fd), "sync")
	unix.CloseOnExec(fd)

	var ic initConfig
	if err := json.NewDecoder(sock).Decode(&ic); err != nil {
		return fmt.Errorf("read init config: %w", err)
	}
	fail := func(err error) error {
		if json.NewEncoder(sock).Encode(syncMsg{Type: "error", Message: err.Error()}) == nil {
			return ReportedError{err}
		}
		return err
	}
	execPath, fifo, err := setupContainer(&ic, sock)
	if err != nil {
		return fail(err)
	}
	if err := json.NewEncoder(sock).Encode(syncMsg{Type: "ready"}); err != nil {
		return err
	}
	sock.Close()

	// Block until "start" opens the FIFO for reading. Reopening through
	// /proc/self/fd works after pivot_root, where the host path is gone.
	w, err := reopenFifo(fifo)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	// startContainer hooks run before the byte that lets "start" return, so
	// that its poststart hooks follow them, as the spec orders.
	if h := ic.spec().Hooks; h != nil && len(h.StartContainer) > 0 {
		st := hookState(ic.ID, ic.Bundle, os.Getpid(), specs.StateRunning, ic.spec().Annotations)
		if err := runHooks("startContainer", h.StartContainer, st); err != nil {
			return err
		}
	}
	if _, err := w.Write([]byte{0}); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	w.Close()
	fifo.Close()
	if err := closeInheritedFds(); err != nil {
		return err
	}
	p := ic.spec().Process
	// With no_new_privs the filter goes on last, so that it cannot stop
	// the init's own steps; without, setupProcess loaded it while the init
	// still had CAP_SYS_ADMIN, which loading needs.
	if p.NoNewPrivileges {
		if err := loadSeccomp(ic.Seccomp); err != nil {
			return err
		}
	}
	err = unix.Exec(execPath, p.Args, p.Env)
	return fmt.Errorf("exec %s: %w", p.Args[0], err)
}

// reopenFifo opens the exec FIFO for writing, which blocks until "start"
// reads it, through /proc/self/fd: the container's /proc, or the host's
// when the init inherited it (procEnv).
func reopenFifo(fifo *os.File) (*os.File, error) {
	name := "/proc/self/fd/" + strconv.Itoa(int(fifo.Fd()))
	procFd, err := strconv.Atoi(os.Getenv(procEnv))
	if err != nil {
		return os.OpenFile(name, os.O_WRONLY|unix.O_CLOEXEC, 0)
	}
	os.Unsetenv(procEnv)
	defer unix.Close(procFd)
	fd, err := unix.Openat(procFd, strings.TrimPrefix(name, "/proc/"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "exec.fifo"), nil
}

// setupContainer does everything between clone and exec. It returns the
// resolved executable and the FIFO (an O_PATH fd opened before pivot_root).
func setupContainer(ic *initConfig, sock *os.File) (string, *os.File, error) {
	s := ic.spec()
	if ic.NewCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return "", nil, fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	if err := setHostname(s); err != nil {
		return "", nil, err
	}
	fifoFd, err := strconv.Atoi(os.Getenv(fifoEnv))
	if err != nil {
		return "", nil, fmt.Errorf("exec fifo %s: no inherited fd", ic.Fifo)
	}
	os.Unsetenv(fifoEnv)
	unix.CloseOnExec(fifoFd)
	fifo := os.NewFile(uintptr(fifoFd), "exec.fifo")
	if err := setupRootfs(ic, func() error { return hookPoint(ic, sock) }); err != nil {
		return "", nil, err
	}
	// After the rootfs: the pty must come from the container's devpts.
	if s.Process.Terminal {
		fd, err := strconv.Atoi(os.Getenv(consoleEnv))
		if err != nil {
			return "", nil, fmt.Errorf("process.terminal: no console socket")
		}
		if err := setupTerminal(os.NewFile(uintptr(fd), "console"), s.Process.ConsoleSize); err != nil {
			return "", nil, err
		}
	}
	if s.Linux.Personality != nil {
		per, err := personality(s.Linux.Personality)
		if err != nil {
			return "", nil, err
		}
		if _, _, errno := unix.Syscall(unix.SYS_PERSONALITY, uintptr(per), 0, 0); errno != 0 {
			return "", nil, fmt.Errorf("linux.personality: %w", errno)
		}
	}
	var early *seccompFilter
	if !s.Process.NoNewPrivileges {
		early = ic.Seccomp
	}
	if err := setupProcess(s.Process, early); err != nil {
		return "", nil, err
	}
	path, err := lookPath(s.Process.Args[0], s.Process.Env)
	if err != nil {
		return "", nil, err
	}
	return path, fifo, nil
}

// closeInheritedFds marks every fd above stderr close-on-exec: the container
// must not inherit its creator's files (a shim's pipes, say).
func closeInheritedFds() error {
	// close_range (Linux 5.11) needs no /proc, which a joined mount
	// namespace's may not show us.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list fds: %w", err)
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// hookPoint runs between the mounts and pivot_root: the parent's hooks
// (prestart, createRuntime) in the runtime's namespaces, then this side's
// createContainer hooks, in the container's namespaces but with the
// runtime's paths, as the spec says.
func hookPoint(ic *initConfig, sock *os.File) error {
	h := ic.spec().Hooks
	if h == nil {
		return nil
	}
	if len(h.Prestart)+len(h.CreateRuntime) > 0 {
		if err := json.NewEncoder(sock).Encode(syncMsg{Type: "hooks"}); err != nil {
			return err
		}
		var m syncMsg
		if err := json.NewDecoder(sock).Decode(&m); err != nil || m.Type != "resume" {
			return fmt.Errorf("waiting for the runtime's hooks: %v", err)
		}
	}
	st := hookState(ic.ID, ic.Bundle, os.Getpid(), specs.StateCreating, ic.spec().Annotations)
	return runHooks("createContainer", h.CreateContainer, st)
}
