package linux

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/mountinfo"
)

// cgroupLayout is where the host mounts its cgroup hierarchies.
type cgroupLayout struct {
	// Unified is the cgroup2 mount when the host runs cgroup v2 only.
	Unified string
	// V1 maps each v1 controller to its hierarchy's mount point.
	V1 map[string]string
}

// layoutMemo keeps the layout for a while: reading mountinfo costs a
// millisecond or more on a node with a thousand mounts (pods pin several
// each), and a stats call of a hundred containers would read it a hundred
// times. The hierarchies a host mounts do not move while it runs pods; the
// memo still notices a change within layoutTTL.
var layoutMemo struct {
	sync.Mutex
	l  cgroupLayout
	at time.Time
}

const layoutTTL = 10 * time.Second

func detectCgroupLayout() (cgroupLayout, error) {
	layoutMemo.Lock()
	defer layoutMemo.Unlock()
	if !layoutMemo.at.IsZero() && time.Since(layoutMemo.at) < layoutTTL {
		return layoutMemo.l, nil
	}
	l, err := readCgroupLayout()
	if err != nil {
		return l, err
	}
	layoutMemo.l, layoutMemo.at = l, time.Now()
	return l, nil
}

// readCgroupLayout reads /proc/self/mountinfo. A host with any v1
// controller hierarchy is driven as v1 (the hybrid case: a cgroup2 mount
// holding leftovers such as hugetlb is not where the controllers live).
// A unified host — most hosts — is known from one statfs: every runtime
// invocation would otherwise have the kernel format its whole mount table,
// ~3 ms with the 3,000 mounts of a node of a thousand pods. Other hosts'
// is kept between processes (cgroups_layoutcache.go).
func readCgroupLayout() (cgroupLayout, error) {
	if l, ok := unifiedAt("/sys/fs/cgroup"); ok {
		return l, nil
	}
	return cachedCgroupLayout(layoutCacheFile, readMountinfoLayout)
}

func readMountinfoLayout() (cgroupLayout, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return cgroupLayout{}, err
	}
	defer f.Close()
	return parseCgroupLayout(f)
}

// unifiedAt is the layout of a host whose cgroup mount point, dir, is a
// cgroup2 filesystem.
func unifiedAt(dir string) (cgroupLayout, bool) {
	var fs unix.Statfs_t
	if unix.Statfs(dir, &fs) != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return cgroupLayout{}, false
	}
	return cgroupLayout{Unified: dir}, true
}

func parseCgroupLayout(f *os.File) (cgroupLayout, error) {
	l := cgroupLayout{V1: map[string]string{}}
	var unified []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		mnt := mountinfo.Unescape(pf[4])
		switch qf[0] {
		case "cgroup2":
			unified = append(unified, mnt)
		case "cgroup":
			for _, opt := range strings.Split(qf[2], ",") {
				switch opt {
				case "rw", "ro", "xattr", "clone_children", "noprefix", "cpuset_v2_mode", "favordynmods":
					continue
				}
				if strings.HasPrefix(opt, "release_agent=") {
					continue
				}
				if _, dup := l.V1[opt]; !dup {
					l.V1[opt] = mnt
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return l, err
	}
	if len(l.V1) == 0 {
		if len(unified) == 0 {
			return l, errors.New("no cgroup filesystem is mounted")
		}
		l.Unified = unified[0]
		l.V1 = nil
	}
	return l, nil
}

// paths places cgroupsPath (an absolute path such as /kubepods/pod1/c1) in
// the layout; on v1, in the controllers named only, when any are.
func (l cgroupLayout) paths(cgroupsPath string, only ...string) CgroupPaths {
	rel := filepath.Clean("/" + cgroupsPath)
	if l.Unified != "" {
		return CgroupPaths{Unified: filepath.Join(l.Unified, rel)}
	}
	p := CgroupPaths{V1: make(map[string]string, len(l.V1))}
	if len(only) > 0 {
		for _, ctrl := range only {
			if mnt, ok := l.V1[ctrl]; ok {
				p.V1[ctrl] = mnt + rel
			}
		}
		return p
	}
	for ctrl, mnt := range l.V1 {
		p.V1[ctrl] = filepath.Join(mnt, rel)
	}
	return p
}

// CgroupMode describes the host's cgroups: "v2" (unified), "hybrid" (v1
// controllers beside a cgroup2 mount) or "v1", and the controllers Berth can
// drive there.
func CgroupMode() (mode string, controllers []string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	l, err := parseCgroupLayout(f)
	if err != nil {
		return "", nil, err
	}
	if l.Unified != "" {
		b, err := os.ReadFile(filepath.Join(l.Unified, "cgroup.controllers"))
		if err != nil {
			return "v2", nil, err
		}
		return "v2", strings.Fields(string(b)), nil
	}
	for c := range l.V1 {
		if !strings.HasPrefix(c, "name=") {
			controllers = append(controllers, c)
		}
	}
	sort.Strings(controllers)
	mode = "v1"
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil {
		mode = "hybrid"
	}
	return mode, controllers, nil
}
