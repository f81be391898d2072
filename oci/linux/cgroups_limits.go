package linux

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CgroupLimits are the limits a cgroup holds now (after any update), in
// cAdvisor's units: CPU shares (1024 a CPU; v2's weight converted back),
// CFS quota and period in microseconds, memory in bytes. Zero: unlimited.
type CgroupLimits struct {
	CPUShares, CPUQuota, CPUPeriod        uint64
	Memory, MemoryReservation, MemorySwap uint64
}

// CgroupLimitsOf reads the limits of the container's cgroup, v1 or v2.
func CgroupLimitsOf(cgroupsPath string) (CgroupLimits, error) {
	l, err := detectCgroupLayout()
	if err != nil {
		return CgroupLimits{}, err
	}
	p := l.paths(cgroupsPath)
	var c CgroupLimits
	if d := p.Unified; d != "" {
		if max, err := readCgroupFile(d, "cpu.max"); err == nil {
			quota, period, _ := strings.Cut(max, " ")
			c.CPUQuota = limit(quota)
			c.CPUPeriod = limit(period)
		}
		if w, err := readUint(filepath.Join(d, "cpu.weight")); err == nil && w > 0 {
			// The inverse of the shares-to-weight conversion runc and crun make.
			c.CPUShares = 2 + ((w-1)*262142)/9999
		}
		c.Memory = limitFile(d, "memory.max")
		c.MemoryReservation = limitFile(d, "memory.low")
		c.MemorySwap = limitFile(d, "memory.swap.max")
		return c, nil
	}
	if d := p.V1["cpu"]; d != "" {
		c.CPUShares, _ = readUint(filepath.Join(d, "cpu.shares"))
		if q, err := readCgroupFile(d, "cpu.cfs_quota_us"); err == nil && !strings.HasPrefix(q, "-") {
			c.CPUQuota, _ = strconv.ParseUint(q, 10, 64)
		}
		c.CPUPeriod, _ = readUint(filepath.Join(d, "cpu.cfs_period_us"))
	}
	if d := p.V1["memory"]; d != "" {
		c.Memory = unlimitedV1(limitFile(d, "memory.limit_in_bytes"))
		c.MemoryReservation = unlimitedV1(limitFile(d, "memory.soft_limit_in_bytes"))
		c.MemorySwap = unlimitedV1(limitFile(d, "memory.memsw.limit_in_bytes"))
	}
	return c, nil
}

// limit parses a v2 limit, "max" being none (0).
func limit(s string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	return n
}

func limitFile(dir, file string) uint64 {
	s, err := readCgroupFile(dir, file)
	if err != nil {
		return 0
	}
	return limit(s)
}

// unlimitedV1: v1 says "no limit" with the largest page-aligned int64.
func unlimitedV1(n uint64) uint64 {
	if n >= 1<<62 {
		return 0
	}
	return n
}

// OpenFiles counts the open file descriptors, and the sockets among them,
// of the processes in pids: cAdvisor's container_file_descriptors and
// container_sockets. Processes that went meanwhile are skipped.
func OpenFiles(pids []int) (fds, sockets uint64) {
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd"
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		fds += uint64(len(ents))
		for _, e := range ents {
			if t, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(t, "socket:") {
				sockets++
			}
		}
	}
	return fds, sockets
}

// OpenFilesSoftLimit is the soft RLIMIT_NOFILE of process pid (0 if unknown).
func OpenFilesSoftLimit(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// CgroupProcs lists the processes in the container's cgroup.
func CgroupProcs(cgroupsPath string) ([]int, error) {
	l, err := detectCgroupLayout()
	if err != nil {
		return nil, err
	}
	return l.paths(cgroupsPath).procs()
}
