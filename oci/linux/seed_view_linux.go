package linux

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A clone of a path (open_tree) first scans every mount stacked on the
// mount holding it (has_locked_children): a pod's /etc/hosts, hostname and
// resolv.conf live in berthd's state directory, whose filesystem holds the
// root filesystem, namespace pins and /dev/shm mounts of every pod — ~3,000
// at a thousand pods, ~2 ms a container. A mount view is a detached clone
// of the state directory's mount, without what is stacked on it: a file
// cloned through it scans nothing. berthd makes one and keeps it open;
// berth-runtime reads where it is from MountViewEnv. Older kernels refuse
// clones from a detached mount (NewMountView probes): no view there.

// MountViewEnv says where a mount view is: "<mount ID> <path of the view
// (/proc/<pid>/fd/<n> of its holder)> <directory it shows>".
const MountViewEnv = "BERTH_MOUNT_VIEW"

// NewMountView makes a view of dir and returns it opened, with the ID of
// the mount it shows.
func NewMountView(dir string) (*os.File, uint64, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_MNT_ID, &st); err != nil {
		return nil, 0, fmt.Errorf("mount view of %s: %w", dir, err)
	}
	if st.Mask&unix.STATX_MNT_ID == 0 {
		return nil, 0, fmt.Errorf("mount view of %s: the kernel gives no mount IDs", dir)
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, 0, fmt.Errorf("mount view of %s: %w", dir, err)
	}
	probe, err := unix.OpenTree(fd, ".", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		unix.Close(fd)
		return nil, 0, fmt.Errorf("mount view of %s: a clone from a detached mount: %w", dir, err)
	}
	unix.Close(probe)
	return os.NewFile(uintptr(fd), dir), st.Mnt_id, nil
}

// MountViewValue is MountViewEnv's value for a view of dir, on mount mnt,
// that the runtime opens at path.
func MountViewValue(mnt uint64, path, dir string) string {
	return strconv.FormatUint(mnt, 10) + " " + path + " " + dir
}

// mountView is an opened view.
type mountView struct {
	fd  int
	mnt uint64
	dir string // with a trailing slash
}

// openMountView opens the view env (MountViewEnv) says; nil when there is
// none or it cannot be opened (its holder has gone): clones then go by the
// host's paths.
func openMountView(env string) *mountView {
	id, rest, ok := strings.Cut(env, " ")
	path, dir, ok2 := strings.Cut(rest, " ")
	mnt, err := strconv.ParseUint(id, 10, 64)
	if !ok || !ok2 || err != nil || !strings.HasPrefix(dir, "/") {
		return nil
	}
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	// A path of a holder that has gone may now name anything.
	var st unix.Statx_t
	if unix.Statx(fd, "", unix.AT_EMPTY_PATH, 0, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return nil
	}
	return &mountView{fd: fd, mnt: mnt, dir: strings.TrimSuffix(dir, "/") + "/"}
}

// clone clones file src through the view when the host's path of it ends
// on the mount the view shows (so the view's path names the same file on
// the same mount); errNotInView when it does not.
func (v *mountView) clone(src string, flags uint) (int, error) {
	if v == nil || !strings.HasPrefix(src, v.dir) {
		return -1, errNotInView
	}
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, src, 0, unix.STATX_MNT_ID, &st); err != nil || st.Mnt_id != v.mnt {
		return -1, errNotInView
	}
	return unix.OpenTree(v.fd, strings.TrimPrefix(src, v.dir), flags)
}

var errNotInView = errors.New("not in the mount view")

func (v *mountView) Close() {
	if v != nil {
		unix.Close(v.fd)
	}
}
