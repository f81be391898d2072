package linux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/oci/specjson"
)

// InitArg is the argument with which berth-runtime re-executes itself as a
// container's init process. cmd/berth-runtime dispatches on it before anything else.
const InitArg = "init"

// initSyncEnv names the fd of the init's end of the sync socketpair.
const initSyncEnv = "_BERTH_INIT_SYNC"

// fifoEnv names the fd of the exec FIFO (O_PATH) in the init; procEnv, if
// set, an fd of the host's /proc to reopen it through.
const (
	fifoEnv = "_BERTH_FIFO_FD"
	procEnv = "_BERTH_PROC_FD"
)

// CreateOpts are the arguments of "create".
type CreateOpts struct {
	Root    string // state root (--root)
	ID      string
	Bundle  string
	PidFile string
	// ConsoleSocket receives the pty master when process.terminal is set.
	ConsoleSocket string
	// Self is the berth-runtime binary to re-execute as init; "" means /proc/self/exe.
	Self string
	// Stdin, Stdout, Stderr become the container's stdio. nil means /dev/null.
	Stdin, Stdout, Stderr *os.File
	// NoPivot enters the rootfs with MS_MOVE and chroot, as runc --no-pivot.
	NoPivot bool
	// NsenterLinked says the nsenter constructor is in the binary: joining
	// mount and user namespaces and new time namespaces need it.
	NsenterLinked bool
	// MountSeed is a mount seed's path (MountSeedEnv, seed_linux.go); ""
	// or one that cannot serve means the init copies the host's namespace.
	MountSeed string
	// MountView is a mount view's MountViewEnv (seed_view_linux.go): the
	// seed's copies of files in it are made through it. "" for none.
	MountView string
	// GoInit: the init is the Go one even where the C init could serve (GoInitEnv).
	GoInit bool
}

// joinsUserNS: the spec joins a user namespace by path, whose mappings are
// made already (the spec may repeat them, as runc's users do).
func joinsUserNS(s *specs.Spec) bool {
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.UserNamespace && n.Path != "" {
			return true
		}
	}
	return false
}

// idMaps converts ID maps; nil for none, which Go's fork needs: an empty
// non-nil map makes the child wait for maps nobody writes.
func idMaps(in []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	if len(in) == 0 {
		return nil
	}
	out := make([]syscall.SysProcIDMap, len(in))
	for i, m := range in {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}

// Create creates the container: its init process waits, fully set up, for Start.
// On failure nothing is left behind: no process, cgroup or state directory.
func Create(ctx context.Context, o CreateOpts) (err error) {
	if err := checkID(o.ID); err != nil {
		return err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return err
	}
	spec, err := LoadSpec(bundle)
	if err != nil {
		return err
	}
	plan, err := planNamespaces(spec.Linux.Namespaces, o.NsenterLinked)
	if err != nil {
		return err
	}
	filter, err := compileSeccomp(spec.Linux.Seccomp)
	if err != nil {
		return err
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if fi, err := os.Stat(rootfs); err != nil || !fi.IsDir() {
		return fmt.Errorf("root.path %s is not a directory", rootfs)
	}

	dir := stateDir(o.Root, o.ID)
	if err := os.MkdirAll(o.Root, 0o711); err != nil {
		return fmt.Errorf("create state root %s: %w", o.Root, err)
	}
	if err := os.Mkdir(dir, 0o711); err != nil {
		if os.IsExist(err) {
			return fmt.Errorf("container %s: %w", o.ID, errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("create state dir: %w", err)
	}
	var cmd *exec.Cmd
	var cg CgroupPaths
	pid := 0 // the init's
	defer func() {
		if err == nil {
			return
		}
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
		if cmd != nil && pid > 0 && pid != cmd.Process.Pid {
			// nsenter's child: not ours to wait for; our caller's subreaper reaps it.
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		_ = cg.destroy()
		_ = os.RemoveAll(dir)
	}()

	fifo := filepath.Join(dir, fifoName)
	// 0622: the init may have dropped to a non-root user by the time it opens it.
	if err := unix.Mkfifo(fifo, 0o622); err != nil {
		return fmt.Errorf("create exec fifo: %w", err)
	}
	_ = os.Chmod(fifo, 0o622) // undo the umask

	layout, err := detectCgroupLayout()
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	cgPath := spec.Linux.CgroupsPath
	if cgPath == "" {
		cgPath = "/" + o.ID // runc's default, so tools that look for it find it
	}
	cg = layout.paths(cgPath)

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync socketpair: %w", err)
	}
	parentSock := os.NewFile(uintptr(fds[0]), "sync-parent")
	childSock := os.NewFile(uintptr(fds[1]), "sync-child")
	defer parentSock.Close()
	defer childSock.Close()

	self := o.Self
	if self == "" {
		self = "/proc/self/exe"
	}
	cmd = &exec.Cmd{
		Path: self,
		Args: []string{"berth-runtime", InitArg},
		// GOMAXPROCS=1 from the start: the init's runtime.GOMAXPROCS(1)
		// would otherwise stop the world to shrink it (~0.2 ms).
		Env:        []string{initSyncEnv + "=3", "GOMAXPROCS=1"},
		Stdin:      o.Stdin,
		Stdout:     o.Stdout,
		Stderr:     o.Stderr,
		ExtraFiles: []*os.File{childSock},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: plan.cloneFlags,
			// Written by Go between clone and exec, from this (root) process:
			// setgroups stays allowed inside, as the spec's users expect.
			UidMappings:                idMaps(spec.Linux.UIDMappings),
			GidMappings:                idMaps(spec.Linux.GIDMappings),
			GidMappingsEnableSetgroups: len(spec.Linux.GIDMappings) > 0,
		},
	}
	if plan.early {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
		cmd.Env = append(cmd.Env, plan.earlyEnv(spec.Linux.TimeOffsets)...)
	} else if len(spec.Linux.UIDMappings) > 0 {
		// Become the namespace's root before exec: an unmapped uid would
		// lose, at execve, the capabilities the new namespace grants.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	switch {
	case spec.Process.Terminal && o.ConsoleSocket == "":
		return errors.New("process.terminal needs --console-socket to send the pty master to")
	case spec.Process.Terminal:
		console, err := dialConsole(o.ConsoleSocket)
		if err != nil {
			return err
		}
		defer console.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, console)
		cmd.Env = append(cmd.Env, consoleEnv+"=4")
	}
	fifoFd, err := unix.Open(fifo, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo %s: %w", fifo, err)
	}
	fifoFile := os.NewFile(uintptr(fifoFd), "exec.fifo")
	defer fifoFile.Close()
	cmd.ExtraFiles = append(cmd.ExtraFiles, fifoFile)
	fifoInitFd := 2 + len(cmd.ExtraFiles)
	cmd.Env = append(cmd.Env, fifoEnv+"="+strconv.Itoa(fifoInitFd))
	if plan.joinsMount {
		// The joined namespace's /proc may belong to another PID namespace,
		// where the init is not /proc/self: it reopens the FIFO through ours.
		proc, err := os.OpenFile("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /proc: %w", err)
		}
		defer proc.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, proc)
		cmd.Env = append(cmd.Env, procEnv+"="+strconv.Itoa(2+len(cmd.ExtraFiles)))
	}
	// The cgroup first: the init starts in it (see cgroupJoin).
	if err := cg.create(); err != nil {
		return err
	}
	if err := cg.set(spec.Linux.Resources); err != nil {
		return err
	}
	join, err := cg.openJoin(o.NsenterLinked)
	if err != nil {
		return err
	}
	defer join.Close()
	seed, sm := seedFor(o, spec, plan, rootfs, cg)
	defer seed.Close()
	defer sm.Close()
	if sm != nil {
		sm.passTo(&cmd.ExtraFiles)
	}
	ic := initConfig{ID: o.ID, Bundle: bundle, Spec: (*specjson.Spec)(spec), Rootfs: rootfs, Fifo: fifo, NewCgroupNS: plan.newCgroup, Cgroup: cg, Seccomp: filter,
		JoinsMountNS: plan.joinsMount, NoPivot: o.NoPivot, Seed: sm}
	if sm != nil {
		ic.Rootfs = seedRootfs
	}
	// The C init, where it serves, sets the container up without starting
	// a Go runtime (nsenter/initplan.h): most of what an init costs.
	var cPlan []byte
	if cInitServes(o, spec, plan) {
		if b, ok := initPlan(&ic, fifoInitFd); ok {
			cPlan = b
			cmd.Env = append(cmd.Env, initPlanEnv+"=1")
		}
	}
	start := (*exec.Cmd).Start
	if !plan.early {
		start = func(c *exec.Cmd) error { return startInNamespaces(plan.join, seed, c.Start) }
	}
	joined, err := join.start(cmd, start)
	if err != nil {
		cmd = nil
		return fmt.Errorf("start init process: %w", err)
	}
	childSock.Close()
	join.Close()
	pid = cmd.Process.Pid
	if plan.early {
		// nsenter joined and unshared, forked the init, reported its PID
		// and exited.
		msg, err := waitSync(ctx, parentSock)
		if err != nil {
			return err
		}
		if msg.Type != "pid" || msg.Pid <= 0 {
			return fmt.Errorf("container init: namespaces: %s", msg.Message)
		}
		pid = msg.Pid
		_ = cmd.Wait()
	}

	if !joined {
		if err := cg.addProc(pid); err != nil {
			return err
		}
	}

	if cPlan != nil {
		_, err = parentSock.Write(cPlan)
	} else {
		err = json.NewEncoder(parentSock).Encode(&ic)
	}
	if err != nil {
		return fmt.Errorf("send config to init: %w", err)
	}
	dec := json.NewDecoder(parentSock)
	msg, err := waitSyncDecoder(ctx, dec)
	if err != nil {
		return err
	}
	if msg.Type == "hooks" {
		// The namespaces and mounts exist, pivot_root has not happened:
		// the runtime-namespace hooks run now, and the init waits for them.
		if h := spec.Hooks; h != nil {
			st := hookState(o.ID, bundle, pid, specs.StateCreating, spec.Annotations)
			if err := runHooks("prestart", h.Prestart, st); err != nil {
				return err
			}
			if err := runHooks("createRuntime", h.CreateRuntime, st); err != nil {
				return err
			}
		}
		if err := json.NewEncoder(parentSock).Encode(syncMsg{Type: "resume"}); err != nil {
			return fmt.Errorf("resume init: %w", err)
		}
		if msg, err = waitSyncDecoder(ctx, dec); err != nil {
			return err
		}
	}
	if msg.Type != "ready" {
		return fmt.Errorf("container init: %s", msg.Message)
	}

	started, _, err := processStartTime(pid)
	if err != nil {
		return fmt.Errorf("init process exited during create: %w", err)
	}
	st := &State{
		ID: o.ID, Bundle: bundle, Rootfs: rootfs, Pid: pid, StartTime: started,
		Created: time.Now().UTC(), Annotations: spec.Annotations, Cgroup: cg, Seccomp: filter, MountSeed: sm != nil,
		CInit: cPlan != nil,
	}
	if filter == nil {
		st.Seccomp = &seccompFilter{}
	}
	if err := st.save(o.Root); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if o.PidFile != "" {
		if err := atomicfile.Write(o.PidFile, []byte(strconv.Itoa(st.Pid)), 0o644); err != nil {
			return fmt.Errorf("write pid file: %w", err)
		}
	}
	// The init is adopted by our parent's subreaper (the shim) once we exit.
	_ = cmd.Process.Release()
	return nil
}

// waitSync reads the init's answer; it gives up when ctx ends.
func waitSync(ctx context.Context, sock *os.File) (syncMsg, error) {
	return waitSyncDecoder(ctx, json.NewDecoder(sock))
}
