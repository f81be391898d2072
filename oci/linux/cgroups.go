package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// CgroupPaths are a container's cgroup directories: one cgroup2 directory on
// a unified host, or one directory per v1 hierarchy (keyed by controller:
// "memory", "cpu", "cpuacct", ..., "name=systemd") on a v1 or hybrid host.
type CgroupPaths struct {
	Unified string            `json:"unified,omitempty"`
	V1      map[string]string `json:"v1,omitempty"`
}

// dirs returns the distinct directories, sorted, so co-mounted controllers
// (cpu,cpuacct) are handled once.
func (p CgroupPaths) dirs() []string {
	if p.Unified != "" {
		return []string{p.Unified}
	}
	seen := map[string]bool{}
	var out []string
	for _, d := range p.V1 {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

func writeCgroupFile(dir, file, val string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0); err != nil {
		return fmt.Errorf("cgroup: write %q to %s: %w", val, filepath.Join(dir, file), err)
	}
	return nil
}

func readCgroupFile(dir, file string) (string, error) {
	b, err := ReadSmallFile(filepath.Join(dir, file))
	return strings.TrimSpace(string(b)), err
}

// ReadSmallFile reads a cgroup or proc file with plain system calls: the
// os package would register each such file with the runtime's poller
// (cgroup files can be polled), which costs more than the read, and a
// stats call reads thousands of them.
func ReadSmallFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// create makes the directories. mountRoot bounds the v2 walk that enables
// controllers for the ancestors; for v1 cpuset each new level copies its
// parent's cpus and mems, which the kernel leaves empty.
func (p CgroupPaths) create() error {
	if p.Unified != "" {
		return createV2(p.Unified)
	}
	for _, d := range p.dirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("cgroup: create %s: %w", d, err)
		}
	}
	if d, ok := p.V1["cpuset"]; ok {
		return fillCpuset(d)
	}
	return nil
}

// fillCpuset gives dir, and each ancestor below the hierarchy's root that
// lacks them, its parent's cpus and mems.
//
// On v1 the kernel rebuilds the scheduler's domains each time a cpuset that
// balances load gets CPUs or is removed, walking every cpuset of the host
// (dl_rebuild_rd_accounting: ~3 ms a pod at a thousand pods, profiled).
// While the root cpuset balances load, the default, the kernel makes one
// domain of all CPUs whatever the cpusets below say; so a new cpuset is set
// not to balance before it gets its CPUs: the same scheduling, no rebuild.
func fillCpuset(dir string) error {
	root := dir
	for {
		p := filepath.Dir(root)
		if _, err := os.Stat(filepath.Join(p, "cpuset.cpus")); err != nil {
			break
		}
		root = p
	}
	lb, _ := readCgroupFile(root, "cpuset.sched_load_balance")
	return fillCpusetBelow(root, dir, lb == "1")
}

func fillCpusetBelow(root, dir string, rootBalances bool) error {
	if dir == root {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := fillCpusetBelow(root, parent, rootBalances); err != nil {
		return err
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readCgroupFile(dir, f)
		if err != nil {
			return fmt.Errorf("cgroup: read %s/%s: %w", dir, f, err)
		}
		if cur != "" {
			continue
		}
		if f == "cpuset.cpus" && rootBalances {
			_ = writeCgroupFile(dir, "cpuset.sched_load_balance", "0") // best effort: only the rebuild is at stake
		}
		v, err := readCgroupFile(parent, f)
		if err != nil {
			return fmt.Errorf("cgroup: read %s/%s: %w", parent, f, err)
		}
		if err := writeCgroupFile(dir, f, v); err != nil {
			return err
		}
	}
	return nil
}

// createV2 makes dir and enables, in each ancestor that it creates or finds,
// every controller the ancestor has, so the leaf can use them.
func createV2(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "cgroup.controllers")); err == nil {
			break
		}
		missing = append(missing, d)
		if d == "/" || d == "." {
			return fmt.Errorf("cgroup: %s is not inside a cgroup2 mount", dir)
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		enableControllers(filepath.Dir(d))
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("cgroup: create %s: %w", d, err)
		}
	}
	return nil
}

// enableControllers is best effort: a cgroup that holds processes may refuse
// (no internal processes rule); setting a limit later then names the file.
func enableControllers(dir string) {
	avail, err := readCgroupFile(dir, "cgroup.controllers")
	if err != nil {
		return
	}
	for _, c := range strings.Fields(avail) {
		_ = writeCgroupFile(dir, "cgroup.subtree_control", "+"+c)
	}
}

func (p CgroupPaths) addProc(pid int) error {
	for _, d := range p.dirs() {
		if err := writeCgroupFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// procs lists the PIDs in the container's cgroup.
func (p CgroupPaths) procs() ([]int, error) {
	d := p.Unified
	if d == "" {
		for _, c := range []string{"pids", "freezer", "memory", "cpu"} {
			if p.V1[c] != "" {
				d = p.V1[c]
				break
			}
		}
	}
	if d == "" {
		return nil, nil
	}
	s, err := readCgroupFile(d, "cgroup.procs")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(s) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

func (p CgroupPaths) frozen() bool {
	if p.Unified != "" {
		v, _ := readCgroupFile(p.Unified, "cgroup.freeze")
		return v == "1"
	}
	if d := p.V1["freezer"]; d != "" {
		v, _ := readCgroupFile(d, "freezer.state")
		return v == "FROZEN" || v == "FREEZING"
	}
	return false
}

// destroy removes the directories, waiting up to a second for dying
// processes to leave.
func (p CgroupPaths) destroy() error { return p.destroyWithin(time.Second) }

func (p CgroupPaths) destroyWithin(wait time.Duration) error {
	var errs []error
	for _, d := range p.dirs() {
		var err error
		for i := 0; i <= int(wait/(10*time.Millisecond)); i++ {
			err = os.Remove(d)
			if err == nil || os.IsNotExist(err) {
				err = nil
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroup: remove %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// set applies the spec's resources.
func (p CgroupPaths) set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if p.Unified != "" {
		return setV2(p.Unified, r)
	}
	return setV1(p.V1, r)
}

func (p CgroupPaths) thaw() error {
	if p.Unified != "" {
		return writeCgroupFile(p.Unified, "cgroup.freeze", "0")
	}
	if d := p.V1["freezer"]; d != "" {
		return writeCgroupFile(d, "freezer.state", "THAWED")
	}
	return nil
}

// CgroupDirs returns the directories cgroupsPath names on this host: one
// per v1 hierarchy, or one cgroup2 directory.
func CgroupDirs(cgroupsPath string) ([]string, error) {
	l, err := detectCgroupLayout()
	if err != nil {
		return nil, err
	}
	return l.paths(cgroupsPath).dirs(), nil
}

// CreateCgroup makes cgroupsPath's directories (a pod's cgroup, say), with
// cpuset and controller set-up as for a container's.
func CreateCgroup(cgroupsPath string) error {
	l, err := detectCgroupLayout()
	if err != nil {
		return err
	}
	return l.paths(cgroupsPath).create()
}

// SetCgroupResources applies r to cgroupsPath (a pod's cgroup, on an
// in-place resize), as to a container's.
func SetCgroupResources(cgroupsPath string, r *specs.LinuxResources) error {
	l, err := detectCgroupLayout()
	if err != nil {
		return err
	}
	return l.paths(cgroupsPath).set(r)
}

// RemoveCgroup removes cgroupsPath's directories; a missing one is fine. It
// does not wait: its caller has removed what was inside.
func RemoveCgroup(cgroupsPath string) error {
	l, err := detectCgroupLayout()
	if err != nil {
		return err
	}
	return l.paths(cgroupsPath).destroyWithin(0)
}

// freeze freezes (or thaws) every process of the cgroup and waits until the
// kernel says it is done.
func (p CgroupPaths) freeze(on bool) error {
	file, want, val := "", "", ""
	var dir string
	switch {
	case p.Unified != "":
		dir, file, val = p.Unified, "cgroup.freeze", map[bool]string{true: "1", false: "0"}[on]
	case p.V1["freezer"] != "":
		dir, file = p.V1["freezer"], "freezer.state"
		val = map[bool]string{true: "FROZEN", false: "THAWED"}[on]
		want = val
	default:
		return errors.New("cgroup: no freezer on this host")
	}
	if err := writeCgroupFile(dir, file, val); err != nil {
		return err
	}
	for i := 0; i < 1000; i++ {
		if p.Unified != "" {
			ev, _ := readCgroupFile(dir, "cgroup.events")
			if strings.Contains(ev, "frozen "+val) {
				return nil
			}
		} else if st, _ := readCgroupFile(dir, file); st == want {
			return nil
		} else if on && i%25 == 24 {
			// A v1 freeze can stay FREEZING when a task forks as it is
			// frozen (seen under -race load in CI); as runc does, thaw
			// and ask again.
			_ = writeCgroupFile(dir, file, "THAWED")
			_ = writeCgroupFile(dir, file, val)
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("cgroup: %s did not reach %s", dir, val)
}
