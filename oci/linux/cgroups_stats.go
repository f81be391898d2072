package linux

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CgroupUsage is what a container's cgroup has used, as kubelet's stats want it.
type CgroupUsage struct {
	// CPUNanos is the CPU time used since the cgroup was made.
	CPUNanos uint64
	// Memory is the memory in use (page cache included), WorkingSet that
	// minus inactive file pages (what the OOM killer and kubelet weigh),
	// RSS the anonymous memory.
	Memory, WorkingSet, RSS uint64
	PageFaults, MajorFaults uint64
	Swap                    uint64
}

// CgroupStats reads the usage of the container's cgroup, v1 or v2.
func CgroupStats(cgroupsPath string) (CgroupUsage, error) {
	l, err := detectCgroupLayout()
	if err != nil {
		return CgroupUsage{}, err
	}
	return l.paths(cgroupsPath).stats()
}

func (p CgroupPaths) stats() (CgroupUsage, error) {
	var u CgroupUsage
	if p.Unified != "" {
		cpu, err := readKeyed(filepath.Join(p.Unified, "cpu.stat"))
		if err != nil {
			return u, err
		}
		u.CPUNanos = cpu["usage_usec"] * 1000
		mem, err := readKeyed(filepath.Join(p.Unified, "memory.stat"))
		if err != nil {
			return u, err
		}
		u.Memory, _ = readUint(filepath.Join(p.Unified, "memory.current"))
		u.Swap, _ = readUint(filepath.Join(p.Unified, "memory.swap.current"))
		u.RSS, u.PageFaults, u.MajorFaults = mem["anon"], mem["pgfault"], mem["pgmajfault"]
		u.WorkingSet = sub(u.Memory, mem["inactive_file"])
		return u, nil
	}
	var err error
	if d := p.V1["cpuacct"]; d != "" {
		if u.CPUNanos, err = readUint(filepath.Join(d, "cpuacct.usage")); err != nil {
			return u, err
		}
	}
	if d := p.V1["memory"]; d != "" {
		if u.Memory, err = readUint(filepath.Join(d, "memory.usage_in_bytes")); err != nil {
			return u, err
		}
		mem, err := readKeyed(filepath.Join(d, "memory.stat"))
		if err != nil {
			return u, err
		}
		u.RSS, u.PageFaults, u.MajorFaults = mem["total_rss"], mem["total_pgfault"], mem["total_pgmajfault"]
		u.WorkingSet = sub(u.Memory, mem["total_inactive_file"])
		if memsw, err := readUint(filepath.Join(d, "memory.memsw.usage_in_bytes")); err == nil {
			u.Swap = sub(memsw, u.Memory)
		}
	}
	return u, nil
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func readUint(path string) (uint64, error) {
	s, err := readCgroupFile(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

// readKeyed reads a cgroup file of "key value" lines.
func readKeyed(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, sc.Err()
}
