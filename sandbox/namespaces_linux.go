package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

var nsFlags = map[string]int{"net": unix.CLONE_NEWNET, "ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS}

// pinNamespaces creates new namespaces of the given kinds ("net", "ipc",
// "uts") and keeps them alive by bind-mounting them at dir/<kind>. In the new
// UTS namespace it sets hostname; in the new network namespace it brings
// loopback up.
//
// It works on a thread of its own that unshares, and that thread is never
// returned to the Go scheduler (it stays locked, so it exits with the goroutine).
func pinNamespaces(dir string, kinds []string, hostname string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	type result struct {
		paths map[string]string
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		paths, err := pinOnThisThread(dir, kinds, hostname)
		ch <- result{paths, err}
	}()
	r := <-ch
	if r.err != nil {
		unpinNamespaces(r.paths)
	}
	return r.paths, r.err
}

func pinOnThisThread(dir string, kinds []string, hostname string) (map[string]string, error) {
	flags := 0
	for _, k := range kinds {
		flags |= nsFlags[k]
	}
	if err := unix.Unshare(flags); err != nil {
		return nil, fmt.Errorf("unshare %v: %w", kinds, err)
	}
	if err := nameAndLoopback(flags, hostname); err != nil {
		return nil, err
	}
	return pinAll(dir, kinds, "/proc/self/task/"+strconv.Itoa(unix.Gettid()))
}

// nameAndLoopback sets the hostname in the calling thread's new UTS
// namespace and brings up loopback in its new network namespace (flags say
// which it has).
func nameAndLoopback(flags int, hostname string) error {
	if flags&unix.CLONE_NEWUTS != 0 && hostname != "" {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", hostname, err)
		}
	}
	if flags&unix.CLONE_NEWNET != 0 {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	return nil
}

// pinAll bind-mounts the namespaces of kinds of the task at proc (a
// /proc/<pid> or /proc/self/task/<tid> path) at dir/<kind>. The paths it
// pinned come back even on failure, for unpinNamespaces.
func pinAll(dir string, kinds []string, proc string) (map[string]string, error) {
	paths := map[string]string{}
	for _, k := range kinds {
		p := filepath.Join(dir, k)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
		if err != nil {
			return paths, fmt.Errorf("create %s: %w", p, err)
		}
		f.Close()
		if err := unix.Mount(proc+"/ns/"+k, p, "", unix.MS_BIND, ""); err != nil {
			os.Remove(p)
			return paths, fmt.Errorf("pin %s namespace at %s: %w", k, p, err)
		}
		paths[k] = p
	}
	return paths, nil
}

// loopbackUp sets IFF_UP on lo through a socket of the current network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring loopback up: %w", err)
	}
	return nil
}

// unpinNamespaces unmounts and removes pinned namespace files; the kernel
// frees a namespace once nothing holds it.
func unpinNamespaces(paths map[string]string) error {
	var errs []error
	for _, p := range paths {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
			continue
		}
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// enterNetns moves the calling (locked) thread into the network namespace at path.
func enterNetns(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	return nil
}
