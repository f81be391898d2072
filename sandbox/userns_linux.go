package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// UserNS is a pod's own user namespace: one mapping of each kind, which
// maps the pod's root (CRI's NamespaceMode POD).
type UserNS struct {
	UIDs, GIDs []store.IDMap
}

// pinWithUserNS is pinNamespaces for a pod with a user namespace of its own.
// One clone of berth-runtime's pause makes all the namespaces together, so
// that the new user namespace owns the others: the pod's root may then
// mount sysfs, set its network's sysctls and mount /proc for its PID
// namespace, none of which it could in namespaces the host's root owns.
// (A thread cannot do it as pinNamespaces does: the kernel lets no
// multi-threaded process into a new user namespace.)
//
// With sharedPID that process stays, as the pod's pause; otherwise it ends
// once its namespaces are pinned, and pid is 0.
func pinWithUserNS(bin, sandboxDir string, kinds []string, hostname string, u *UserNS, sharedPID bool) (paths map[string]string, pid int, start uint64, err error) {
	if err := checkSearchable(sandboxDir); err != nil {
		return nil, 0, 0, err
	}
	dir := filepath.Join(sandboxDir, "ns")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, 0, err
	}
	flags := unix.CLONE_NEWUSER | unix.CLONE_NEWPID
	for _, k := range kinds {
		flags |= nsFlags[k]
	}
	cmd, err := spawnPause(bin, sandboxDir, &syscall.SysProcAttr{
		Cloneflags:  uintptr(flags),
		UidMappings: sysIDMaps(u.UIDs), GidMappings: sysIDMaps(u.GIDs),
		// Containers of the pod may set their supplementary groups.
		GidMappingsEnableSetgroups: true,
	})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("user namespace: %w", err)
	}
	pid = cmd.Process.Pid
	defer func() {
		if err != nil || !sharedPID {
			stopPause(pid, 0)
			pid = 0
		}
		if err != nil {
			_ = unpinNamespaces(paths)
			paths = nil
		}
	}()
	if paths, err = pinAll(dir, append([]string{"user"}, kinds...), fmt.Sprintf("/proc/%d", pid)); err != nil {
		return paths, pid, 0, err
	}
	if err := nameAndLoopbackIn(paths, flags, hostname); err != nil {
		return paths, pid, 0, err
	}
	if !sharedPID {
		return paths, pid, 0, nil
	}
	paths["pid"] = fmt.Sprintf("/proc/%d/ns/pid", pid)
	if pid, start, err = recordPause(sandboxDir, pid); err != nil {
		return paths, pid, 0, err
	}
	return paths, pid, start, nil
}

// nameAndLoopbackIn runs nameAndLoopback on a thread that has joined the
// pinned UTS and network namespaces: the host's root may enter namespaces
// that a user namespace below it owns. The thread is discarded afterwards.
func nameAndLoopbackIn(paths map[string]string, flags int, hostname string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		for kind, flag := range map[string]int{"uts": unix.CLONE_NEWUTS, "net": unix.CLONE_NEWNET} {
			if p := paths[kind]; p != "" {
				if err := setnsPath(p, flag); err != nil {
					errc <- err
					return
				}
			}
		}
		errc <- nameAndLoopback(flags, hostname)
	}()
	return <-errc
}

// checkSearchable says whether the pod's root, an unprivileged uid on the
// host, can reach its containers' bundles under dir: every directory from
// the root down must let others search it (o+x), as /run and /var/lib do.
func checkSearchable(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("pods with user namespaces need %s searchable by others (its mode is %o; chmod o+x %s): %w",
				d, fi.Mode().Perm(), d, errdefs.ErrFailedPrecondition)
		}
		if d == "/" {
			return nil
		}
	}
}

func sysIDMaps(in []store.IDMap) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(in))
	for i, m := range in {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}
