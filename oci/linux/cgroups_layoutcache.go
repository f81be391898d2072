package linux

import (
	"bufio"
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/atomicfile"
)

// On a v1 or hybrid host the layout comes from mountinfo, and every
// berth-runtime invocation and every shim is a new process: each had the
// kernel format the whole mount table (~3 ms, and the page faults of
// parsing it, with the 3,000 mounts of a node of a thousand pods; a third
// of the CPU of a pod's start there). The layout is kept in a file under
// /run instead, with what shows it still holds: the mount namespace, the
// controllers' hierarchies in /proc/cgroups (a hierarchy mounted or
// unmounted changes them) and the mount ID of each mount point. All of it
// is read in a few small syscalls, whatever the number of mounts.

// layoutCacheFile is shared by berthd, the shims and berth-runtime.
const layoutCacheFile = "/run/berth/cgroup-layout.json"

//easyjson:json
type layoutCache struct {
	MountNS  string
	Cgroups  string
	MountIDs map[string]uint64
	Layout   cgroupLayout
}

// cachedCgroupLayout returns the layout kept in file while it still holds,
// or read's, which it keeps there. A cache that cannot be written costs
// only the next read.
func cachedCgroupLayout(file string, read func() (cgroupLayout, error)) (cgroupLayout, error) {
	var c layoutCache
	if b, err := os.ReadFile(file); err == nil && c.UnmarshalJSON(b) == nil {
		if now, ok := layoutWitness(c.Layout); ok && now.MountNS == c.MountNS && now.Cgroups == c.Cgroups && maps.Equal(now.MountIDs, c.MountIDs) {
			return c.Layout, nil
		}
	}
	l, err := read()
	if err != nil {
		return l, err
	}
	if w, ok := layoutWitness(l); ok {
		w.Layout = l
		if b, err := w.MarshalJSON(); err == nil && os.MkdirAll(filepath.Dir(file), 0o711) == nil {
			_ = atomicfile.Write(file, b, 0o644)
		}
	}
	return l, nil
}

// layoutWitness reads what would change with the layout l; false when any
// of it cannot be read (the cache is then not used).
func layoutWitness(l cgroupLayout) (layoutCache, bool) {
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return layoutCache{}, false
	}
	cg, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		return layoutCache{}, false
	}
	w := layoutCache{MountNS: ns, Cgroups: hierarchies(cg), MountIDs: map[string]uint64{}}
	points := []string{l.Unified}
	for _, mnt := range l.V1 {
		points = append(points, mnt)
	}
	for _, p := range points {
		if p == "" {
			continue
		}
		id, ok := mountID(p)
		if !ok {
			return layoutCache{}, false
		}
		w.MountIDs[p] = id
	}
	return w, true
}

// hierarchies is /proc/cgroups without its count of cgroups, which
// changes with every container: each controller, its hierarchy, enabled.
func hierarchies(procCgroups []byte) string {
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(procCgroups))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && !strings.HasPrefix(f[0], "#") {
			b.WriteString(f[0] + ":" + f[1] + ":" + f[3] + ";")
		}
	}
	return b.String()
}

// mountID is the ID of the mount at p, which must be its root: one 64-bit
// ID never reused (Linux 6.8), or the older reusable one together with the
// fact that a cgroup filesystem is there.
func mountID(p string) (uint64, bool) {
	var st unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, p, unix.AT_STATX_DONT_SYNC, unix.STATX_MNT_ID_UNIQUE, &st) == nil && st.Mask&unix.STATX_MNT_ID_UNIQUE != 0 {
		return st.Mnt_id, st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	}
	if unix.Statx(unix.AT_FDCWD, p, unix.AT_STATX_DONT_SYNC, unix.STATX_MNT_ID, &st) != nil || st.Mask&unix.STATX_MNT_ID == 0 {
		return 0, false
	}
	var fs unix.Statfs_t
	if unix.Statfs(p, &fs) != nil || fs.Type != unix.CGROUP_SUPER_MAGIC && fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return 0, false
	}
	return st.Mnt_id, st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
}
