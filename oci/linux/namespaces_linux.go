package linux

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// nsPlan splits the spec's namespaces into those cloned new and those joined by path.
type nsPlan struct {
	cloneFlags uintptr
	newCgroup  bool
	join       []specs.LinuxNamespace
	// early: nsenter's C constructor joins and creates the namespaces in
	// the init, before its Go runtime starts: the kernel lets only a
	// single-threaded process join a mount or user namespace, and a new
	// time namespace applies only to children, with its offsets written
	// before the first. Otherwise Go's clone does it, which is cheaper.
	early bool
	// joinsMount: the container lives in a mount namespace that exists:
	// its root is that namespace's, and no root filesystem is set up.
	joinsMount bool
}

// nsenterLinked says the binary has nsenter's constructor, which early needs.
func planNamespaces(ns []specs.LinuxNamespace, nsenterLinked bool) (nsPlan, error) {
	var p nsPlan
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, n := range ns {
		flag, ok := nsFlags[n.Type]
		if !ok {
			return p, fmt.Errorf("linux.namespaces: unknown type %q", n.Type)
		}
		if seen[n.Type] {
			return p, fmt.Errorf("linux.namespaces: %s listed twice", n.Type)
		}
		seen[n.Type] = true
		switch {
		case n.Path != "":
			if n.Type == specs.MountNamespace || n.Type == specs.UserNamespace {
				p.early = true
				p.joinsMount = p.joinsMount || n.Type == specs.MountNamespace
			}
			p.join = append(p.join, n)
		case n.Type == specs.TimeNamespace:
			if _, err := os.Stat("/proc/self/ns/time"); err != nil {
				return p, errors.New("linux.namespaces: this kernel has no time namespaces")
			}
			p.early = true
			p.cloneFlags |= flag
		case n.Type == specs.CgroupNamespace:
			// Unshared by the init once it sits in its cgroup, so the
			// namespace's root is the container's own cgroup.
			p.newCgroup = true
		default:
			p.cloneFlags |= flag
		}
	}
	if p.early && !nsenterLinked {
		return p, errors.New("linux.namespaces: joining a mount or user namespace, or a new time namespace, needs berth-runtime built with cgo")
	}
	if p.early && p.cloneFlags&unix.CLONE_NEWUSER != 0 {
		return p, errors.New("linux.namespaces: a new user namespace cannot be combined with joining a mount or user namespace by path or with a new time namespace")
	}
	return p, nil
}

// earlyEnv is what nsenter's constructor reads to set up the init's
// namespaces: those to join (user first, mount last), the flags to
// unshare, the time namespace's offsets.
func (p nsPlan) earlyEnv(offsets map[string]specs.LinuxTimeOffset) []string {
	var join []string
	for _, n := range p.join {
		join = append(join, nsenterKind[n.Type]+":"+n.Path)
	}
	env := []string{"_BERTH_UNSHARE=" + strconv.FormatUint(uint64(p.cloneFlags), 10)}
	if len(join) > 0 {
		env = append(env, "_BERTH_NSENTER="+strings.Join(join, ","))
	}
	if len(offsets) > 0 {
		clocks := make([]string, 0, len(offsets))
		for c := range offsets {
			clocks = append(clocks, c)
		}
		sort.Strings(clocks)
		var b strings.Builder
		for _, c := range clocks {
			fmt.Fprintf(&b, "%s %d %d\n", c, offsets[c].Secs, offsets[c].Nanosecs)
		}
		env = append(env, "_BERTH_TIMENS="+b.String())
	}
	return env
}

// nsenterKind names namespaces as /proc/PID/ns does, which nsenter expects.
var nsenterKind = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// checkTimeOffsets: offsets need a new time namespace, and name its clocks.
func checkTimeOffsets(s *specs.Spec) error {
	if len(s.Linux.TimeOffsets) == 0 {
		return nil
	}
	newTime := false
	for _, n := range s.Linux.Namespaces {
		newTime = newTime || (n.Type == specs.TimeNamespace && n.Path == "")
	}
	if !newTime {
		return errors.New("linux.timeOffsets: offsets need a new time namespace in linux.namespaces")
	}
	for c := range s.Linux.TimeOffsets {
		if c != "monotonic" && c != "boottime" {
			return fmt.Errorf("linux.timeOffsets: clock %q: want monotonic or boottime", c)
		}
	}
	return nil
}

// startInNamespaces runs start on a fresh OS thread that first joins the
// plan's namespaces by path, and then the mount seed when there is one: a
// child forked from that thread inherits them (and its new mount namespace
// copies the seed). The thread is never unlocked, so the Go runtime
// discards it afterwards instead of reusing a thread that lives in another
// container's namespaces.
func startInNamespaces(join []specs.LinuxNamespace, seed *os.File, start func() error) error {
	if len(join) == 0 && seed == nil {
		return start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		for _, n := range join {
			if err := setns(n); err != nil {
				errc <- err
				return
			}
		}
		if seed != nil {
			// The kernel lets a thread join a mount namespace only with an
			// fs (root, cwd) of its own.
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				errc <- fmt.Errorf("mount seed: unshare fs: %w", err)
				return
			}
			if err := unix.Setns(int(seed.Fd()), unix.CLONE_NEWNS); err != nil {
				errc <- fmt.Errorf("join mount seed: %w", err)
				return
			}
		}
		errc <- start()
	}()
	return <-errc
}

func setns(n specs.LinuxNamespace) error {
	f, err := os.Open(n.Path)
	if err != nil {
		return fmt.Errorf("open %s namespace %s: %w", n.Type, n.Path, err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), int(nsFlags[n.Type])); err != nil {
		return fmt.Errorf("join %s namespace %s: %w", n.Type, n.Path, err)
	}
	return nil
}
