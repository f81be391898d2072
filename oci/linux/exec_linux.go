package linux

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/atomicfile"
	"github.com/berth-runtime/berth/internal/errdefs"
)

// ErrNoNsenter: this binary was built without cgo, so it cannot join a
// running container's mount namespace.
var ErrNoNsenter = errors.New("exec needs berth-runtime built with cgo (the nsenter constructor)")

// ExecOpts are the arguments of "exec".
type ExecOpts struct {
	Root, ID string
	Process  *specs.Process
	PidFile  string
	// Self is the berth-runtime binary; "" means /proc/self/exe.
	Self                  string
	Stdin, Stdout, Stderr *os.File
	// NsenterLinked says the nsenter constructor is in the binary.
	NsenterLinked bool
	// ConsoleSocket receives the pty master when Process.Terminal is set.
	ConsoleSocket string
}

// Exec starts a process in a running container and returns its PID. The
// process is a child of the caller's subreaper (set one to wait for it).
func Exec(ctx context.Context, o ExecOpts) (int, error) {
	if !o.NsenterLinked {
		return 0, ErrNoNsenter
	}
	s, err := Load(o.Root, o.ID)
	if err != nil {
		return 0, err
	}
	if st := s.Status(o.Root); st != specs.StateRunning {
		return 0, fmt.Errorf("container %s is %s, not running: %w", o.ID, st, errdefs.ErrFailedPrecondition)
	}
	if o.Process == nil || len(o.Process.Args) == 0 {
		return 0, fmt.Errorf("exec: process.args must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	if err := unsupportedProcess("exec process", o.Process); err != nil {
		return 0, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	if o.Process.IOPriority != nil {
		return 0, fmt.Errorf("exec process.ioPriority: not supported for exec: %w", errdefs.ErrInvalidArgument)
	}
	if o.Process.Terminal && o.ConsoleSocket == "" {
		return 0, errors.New("exec: process.terminal needs --console-socket to send the pty master to")
	}
	joins, err := namespacesOf(s.Pid)
	if err != nil {
		return 0, err
	}
	// The container's seccomp filter binds its exec'd processes too.
	filter := s.Seccomp
	if filter == nil { // a state from before filters were kept
		if spec, err := LoadSpec(s.Bundle); err == nil {
			if filter, err = compileSeccomp(spec.Linux.Seccomp); err != nil {
				return 0, err
			}
		}
	} else if len(filter.Program) == 0 {
		filter = nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("sync socketpair: %w", err)
	}
	parentSock := os.NewFile(uintptr(fds[0]), "sync-parent")
	childSock := os.NewFile(uintptr(fds[1]), "sync-child")
	defer parentSock.Close()
	self := o.Self
	if self == "" {
		self = "/proc/self/exe"
	}
	cmd := &exec.Cmd{
		Path:       self,
		Args:       []string{"berth-runtime", InitArg},
		Env:        []string{initSyncEnv + "=3", "_BERTH_NSENTER=" + joins, "_BERTH_EXEC_PLAN=1"},
		Stdin:      o.Stdin,
		Stdout:     o.Stdout,
		Stderr:     o.Stderr,
		ExtraFiles: []*os.File{childSock},
	}
	if o.Process.Terminal {
		console, err := dialConsole(o.ConsoleSocket)
		if err != nil {
			childSock.Close()
			return 0, err
		}
		defer console.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, console) // fd 4: CONSOLE_FD in execplan.h
	}
	join, err := s.Cgroup.openJoin(o.NsenterLinked)
	if err != nil {
		childSock.Close()
		return 0, err
	}
	defer join.Close()
	joined, err := join.start(cmd, (*exec.Cmd).Start)
	if err != nil {
		childSock.Close()
		return 0, fmt.Errorf("start exec process: %w", err)
	}
	childSock.Close()
	join.Close()
	dec := json.NewDecoder(parentSock)
	msg, err := waitSyncDecoder(ctx, dec)
	// The intermediate process exits once it has forked: reap it.
	_ = cmd.Wait()
	if err != nil {
		return 0, err
	}
	if msg.Type != "pid" || msg.Pid <= 0 {
		return 0, fmt.Errorf("exec into %s: %s", o.ID, msg.Message)
	}
	pid := msg.Pid
	kill := func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		// Reap it if we adopted it (as a subreaper): a zombie would keep
		// the container's init from ever finishing its exit.
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
	}
	if !joined {
		if err := s.Cgroup.addProc(pid); err != nil {
			kill()
			return 0, err
		}
	}
	plan, err := execPlan(o.Process, filter)
	if err != nil {
		kill()
		return 0, err
	}
	if _, err := parentSock.Write(plan); err != nil {
		kill()
		return 0, fmt.Errorf("send exec plan: %w", err)
	}
	// The socket closes on exec: EOF means the process runs; anything else
	// is the reason it does not.
	if msg, err = waitSyncDecoder(ctx, dec); err == nil || !errors.Is(err, io.EOF) {
		kill() // it has exited, or is about to: reap it
		if err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("exec into %s: %s", o.ID, msg.Message)
	}
	if o.PidFile != "" {
		if err := atomicfile.Write(o.PidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return pid, fmt.Errorf("write pid file: %w", err)
		}
	}
	return pid, nil
}

// execPlan encodes what the exec child does in C before execve (see
// nsenter/execplan.h for the layout): credentials, capabilities, rlimits,
// cwd, umask, no_new_privs, argv and env.
func execPlan(p *specs.Process, filter *seccompFilter) ([]byte, error) {
	f, err := processFields(p, filter)
	if err != nil {
		return nil, err
	}
	var w planFields
	w.add(f...)
	return w.encode()
}

// processFields are the process's part of a plan, for exec's child and
// for the C init alike.
func processFields(p *specs.Process, filter *seccompFilter) ([]string, error) {
	caps, err := parseCaps(p.Capabilities)
	if err != nil {
		return nil, err
	}
	var f []string
	add := func(v ...string) { f = append(f, v...) }
	umask := "-1"
	if p.User.Umask != nil {
		umask = num(uint64(*p.User.Umask))
	}
	nnp := "0"
	if p.NoNewPrivileges {
		nnp = "1"
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	tty, rows, cols := "0", "0", "0"
	if p.Terminal {
		tty = "1"
		if p.ConsoleSize != nil {
			rows, cols = num(uint64(p.ConsoleSize.Height)), num(uint64(p.ConsoleSize.Width))
		}
	}
	add(num(uint64(p.User.UID)), num(uint64(p.User.GID)), umask, nnp, cwd, tty, rows, cols)
	if filter != nil {
		add(hex.EncodeToString(filter.Program), num(uint64(filter.Flags)))
	} else {
		add("", "0")
	}
	for _, c := range []capSet{caps.bounding, caps.effective, caps.permitted, caps.inheritable, caps.ambient} {
		add(strconv.FormatUint(uint64(c), 16))
	}
	add(num(uint64(len(p.User.AdditionalGids))))
	for _, g := range p.User.AdditionalGids {
		add(num(uint64(g)))
	}
	add(num(uint64(len(p.Rlimits))))
	for _, rl := range p.Rlimits {
		res, ok := rlimitNames[rl.Type]
		if !ok {
			return nil, fmt.Errorf("process.rlimits: unknown type %q", rl.Type)
		}
		add(num(uint64(res)), num(rl.Soft), num(rl.Hard))
	}
	add(num(uint64(len(p.Args))))
	add(p.Args...)
	add(num(uint64(len(p.Env))))
	add(p.Env...)
	return f, nil
}

// planFields is a plan for nsenter's C code: NUL-terminated fields after a
// 4-byte little-endian length.
type planFields []string

func (w *planFields) add(v ...string) { *w = append(*w, v...) }

func (w planFields) encode() ([]byte, error) {
	n := 0
	for _, v := range w {
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("plan: %q contains a NUL byte", v)
		}
		n += len(v) + 1
	}
	out := make([]byte, 4, 4+n)
	binary.LittleEndian.PutUint32(out, uint32(n))
	for _, v := range w {
		out = append(append(out, v...), 0)
	}
	return out, nil
}

// namespacesOf lists the namespaces of pid that differ from ours, as nsenter reads them.
func namespacesOf(pid int) (string, error) {
	var parts []string
	for _, kind := range []string{"user", "ipc", "uts", "net", "pid", "cgroup", "time", "mnt"} {
		theirs := fmt.Sprintf("/proc/%d/ns/%s", pid, kind)
		var a, b unix.Stat_t
		if err := unix.Stat(theirs, &a); err != nil {
			if os.IsNotExist(err) {
				continue // a kernel without this namespace type
			}
			return "", fmt.Errorf("namespaces of %d: %w", pid, err)
		}
		if err := unix.Stat("/proc/self/ns/"+kind, &b); err == nil && a.Ino == b.Ino && a.Dev == b.Dev {
			continue
		}
		parts = append(parts, kind+":"+theirs)
	}
	return strings.Join(parts, ","), nil
}

func waitSyncDecoder(ctx context.Context, dec *json.Decoder) (syncMsg, error) {
	type res struct {
		m   syncMsg
		err error
	}
	ch := make(chan res, 1)
	go func() {
		var m syncMsg
		err := dec.Decode(&m)
		ch <- res{m, err}
	}()
	select {
	case r := <-ch:
		if errors.Is(r.err, io.EOF) {
			return r.m, r.err
		}
		if r.err != nil {
			return r.m, fmt.Errorf("container process died before it was set up: %w", r.err)
		}
		return r.m, nil
	case <-ctx.Done():
		return syncMsg{}, ctx.Err()
	}
}
