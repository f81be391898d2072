package linux

import (
	"fmt"
	"os"
	"runtime"

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
}

func planNamespaces(ns []specs.LinuxNamespace) (nsPlan, error) {
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
			// setns into a mount or user namespace is refused to a
			// multi-threaded process, and a Go process always is.
			if n.Type == specs.MountNamespace || n.Type == specs.UserNamespace {
				return p, fmt.Errorf("linux.namespaces: joining a %s namespace by path is not supported yet", n.Type)
			}
			p.join = append(p.join, n)
		case n.Type == specs.CgroupNamespace:
			// Unshared by the init once it sits in its cgroup, so the
			// namespace's root is the container's own cgroup.
			p.newCgroup = true
		default:
			p.cloneFlags |= flag
		}
	}
	return p, nil
}

// startInNamespaces runs start on a fresh OS thread that first joins the
// plan's namespaces by path: a child forked from that thread inherits them.
// The thread is never unlocked, so the Go runtime discards it afterwards
// instead of reusing a thread that lives in another container's namespaces.
func startInNamespaces(join []specs.LinuxNamespace, start func() error) error {
	if len(join) == 0 {
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
