package linux

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// CgroupUsage is what a container's (or pod's) cgroup has used, as
// kubelet's stats and cAdvisor's metrics want it. Zero where the kernel or
// the hierarchy (v1, v2) has no such counter.
type CgroupUsage struct {
	// CPUNanos is the CPU time used since the cgroup was made, UserNanos
	// and SystemNanos its split.
	CPUNanos, UserNanos, SystemNanos uint64
	// Periods, ThrottledPeriods and ThrottledNanos are CFS quota's counts.
	Periods, ThrottledPeriods, ThrottledNanos uint64
	// Memory is the memory in use (page cache included), WorkingSet that
	// minus inactive file pages (what the OOM killer and kubelet weigh),
	// RSS the anonymous memory, Cache the page cache, MappedFile its
	// mapped part, Kernel the kernel's own, MaxMemory the peak.
	Memory, WorkingSet, RSS, Cache, MappedFile, Kernel, MaxMemory uint64
	PageFaults, MajorFaults                                       uint64
	Swap                                                          uint64
	// Failcnt counts hits of the memory limit; OOMKills the OOM killer's kills.
	Failcnt, OOMKills uint64
	// Pids is the tasks (threads) in the cgroup, PidsMax their limit (0: none).
	Pids, PidsMax uint64
	// IO is per block device ("major:minor").
	IO map[string]IOUsage
	// Hugetlb is per page size ("2MB"): usage now and at its peak.
	Hugetlb map[string][2]uint64
	// Pressure is PSI's stall time (v2): "cpu", "memory", "io" → some, full.
	Pressure map[string][2]time.Duration
}

// IOUsage is a block device's reads and writes, in bytes and operations.
type IOUsage struct {
	ReadBytes, WriteBytes, Reads, Writes uint64
}

// CgroupStats reads the usage of the container's cgroup, v1 or v2: with
// full, every counter; without, those kubelet's stats calls ask for every
// few seconds (CPU time, memory, swap, tasks), a handful of reads.
func CgroupStats(cgroupsPath string, full bool) (CgroupUsage, error) {
	return (*StatFiles)(nil).CgroupStats(cgroupsPath, full)
}

// CgroupStats is CgroupStats reading the counters kubelet asks for through
// f's open files.
func (f *StatFiles) CgroupStats(cgroupsPath string, full bool) (CgroupUsage, error) {
	l, err := detectCgroupLayout()
	if err != nil {
		return CgroupUsage{}, err
	}
	if full {
		return l.paths(cgroupsPath).stats(f, full)
	}
	// The few that kubelet's stats read, not every controller's path.
	return l.paths(cgroupsPath, "cpuacct", "memory", "pids").stats(f, full)
}

func (p CgroupPaths) stats(f *StatFiles, full bool) (CgroupUsage, error) {
	if p.Unified != "" {
		return statsV2(f, p.Unified, full)
	}
	return statsV1(f, p.V1, full)
}

func statsV2(f *StatFiles, dir string, full bool) (CgroupUsage, error) {
	var u CgroupUsage
	cpu, err := f.keyed(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return u, err
	}
	u.CPUNanos, u.UserNanos, u.SystemNanos = cpu["usage_usec"]*1000, cpu["user_usec"]*1000, cpu["system_usec"]*1000
	u.Periods, u.ThrottledPeriods, u.ThrottledNanos = cpu["nr_periods"], cpu["nr_throttled"], cpu["throttled_usec"]*1000
	mem, err := f.keyed(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return u, err
	}
	u.Memory, _ = f.uint(filepath.Join(dir, "memory.current"))
	u.Swap, _ = f.uint(filepath.Join(dir, "memory.swap.current"))
	u.RSS, u.Cache, u.MappedFile, u.Kernel = mem["anon"], mem["file"], mem["file_mapped"], mem["kernel"]
	u.PageFaults, u.MajorFaults = mem["pgfault"], mem["pgmajfault"]
	u.WorkingSet = sub(u.Memory, mem["inactive_file"])
	u.Pids, _ = f.uint(filepath.Join(dir, "pids.current"))
	if !full {
		return u, nil
	}
	u.MaxMemory, _ = readUint(filepath.Join(dir, "memory.peak")) // 5.19
	if ev, err := readKeyed(filepath.Join(dir, "memory.events")); err == nil {
		u.Failcnt, u.OOMKills = ev["max"], ev["oom_kill"]
	}
	u.PidsMax, _ = readUint(filepath.Join(dir, "pids.max")) // "max" reads as 0: no limit
	u.IO = readIOStatV2(filepath.Join(dir, "io.stat"))
	u.Hugetlb = readHugetlb(dir, ".current", ".max")
	u.Pressure = map[string][2]time.Duration{}
	for _, r := range []string{"cpu", "memory", "io"} {
		if some, full, ok := readPressure(filepath.Join(dir, r+".pressure")); ok {
			u.Pressure[r] = [2]time.Duration{some, full}
		}
	}
	return u, nil
}

func statsV1(f *StatFiles, dirs map[string]string, full bool) (CgroupUsage, error) {
	var u CgroupUsage
	var err error
	if d := dirs["cpuacct"]; d != "" {
		if u.CPUNanos, err = f.uint(filepath.Join(d, "cpuacct.usage")); err != nil {
			return u, err
		}
	}
	if d := dirs["memory"]; d != "" {
		if u.Memory, err = f.uint(filepath.Join(d, "memory.usage_in_bytes")); err != nil {
			return u, err
		}
		mem, err := f.keyed(filepath.Join(d, "memory.stat"))
		if err != nil {
			return u, err
		}
		u.RSS, u.Cache, u.MappedFile = mem["total_rss"], mem["total_cache"], mem["total_mapped_file"]
		u.PageFaults, u.MajorFaults = mem["total_pgfault"], mem["total_pgmajfault"]
		u.WorkingSet = sub(u.Memory, mem["total_inactive_file"])
		// memory.stat has the swap in use when the kernel accounts it (the
		// memsw files exist then too): one file fewer to open a cgroup.
		u.Swap = mem["total_swap"]
	}
	if d := dirs["pids"]; d != "" {
		u.Pids, _ = f.uint(filepath.Join(d, "pids.current"))
	}
	if !full {
		return u, nil
	}
	if d := dirs["cpuacct"]; d != "" {
		if st, err := readKeyed(filepath.Join(d, "cpuacct.stat")); err == nil {
			// In USER_HZ ticks, 100 a second on every Linux ABI.
			u.UserNanos, u.SystemNanos = st["user"]*1e7, st["system"]*1e7
		}
	}
	if d := dirs["cpu"]; d != "" {
		if st, err := readKeyed(filepath.Join(d, "cpu.stat")); err == nil {
			u.Periods, u.ThrottledPeriods, u.ThrottledNanos = st["nr_periods"], st["nr_throttled"], st["throttled_time"]
		}
	}
	if d := dirs["memory"]; d != "" {
		u.MaxMemory, _ = readUint(filepath.Join(d, "memory.max_usage_in_bytes"))
		u.Failcnt, _ = readUint(filepath.Join(d, "memory.failcnt"))
		u.Kernel, _ = readUint(filepath.Join(d, "memory.kmem.usage_in_bytes"))
		if oc, err := readKeyed(filepath.Join(d, "memory.oom_control")); err == nil {
			u.OOMKills = oc["oom_kill"]
		}
	}
	if d := dirs["pids"]; d != "" {
		u.PidsMax, _ = readUint(filepath.Join(d, "pids.max"))
	}
	if d := dirs["blkio"]; d != "" {
		u.IO = readBlkioV1(d)
	}
	if d := dirs["hugetlb"]; d != "" {
		u.Hugetlb = readHugetlb(d, ".usage_in_bytes", ".max_usage_in_bytes")
	}
	return u, nil
}

// readIOStatV2 reads io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...".
func readIOStatV2(path string) map[string]IOUsage {
	b, err := ReadSmallFile(path)
	if err != nil {
		return nil
	}
	out := map[string]IOUsage{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		var io IOUsage
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "rbytes":
				io.ReadBytes = n
			case "wbytes":
				io.WriteBytes = n
			case "rios":
				io.Reads = n
			case "wios":
				io.Writes = n
			}
		}
		out[f[0]] = io
	}
	return out
}

// readBlkioV1 reads blkio's throttle counters ("8:0 Read 4096" lines), which
// count every request, whatever the I/O scheduler.
func readBlkioV1(dir string) map[string]IOUsage {
	out := map[string]IOUsage{}
	for _, file := range []string{"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"} {
		b, err := ReadSmallFile(filepath.Join(dir, file))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 {
				continue
			}
			n, _ := strconv.ParseUint(f[2], 10, 64)
			io := out[f[0]]
			bytes := strings.HasSuffix(file, "_bytes_recursive")
			switch {
			case f[1] == "Read" && bytes:
				io.ReadBytes = n
			case f[1] == "Write" && bytes:
				io.WriteBytes = n
			case f[1] == "Read":
				io.Reads = n
			case f[1] == "Write":
				io.Writes = n
			default:
				continue
			}
			out[f[0]] = io
		}
	}
	return out
}

// readHugetlb reads hugetlb.<size><now> and <peak> for every page size.
func readHugetlb(dir, now, peak string) map[string][2]uint64 {
	matches, _ := filepath.Glob(filepath.Join(dir, "hugetlb.*"+now))
	if len(matches) == 0 {
		return nil
	}
	out := map[string][2]uint64{}
	for _, m := range matches {
		size := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), "hugetlb."), now)
		if strings.Contains(size, ".") {
			continue // hugetlb.2MB.rsvd.current and the like
		}
		cur, err := readUint(m)
		if err != nil {
			continue
		}
		max, _ := readUint(filepath.Join(dir, "hugetlb."+size+peak))
		out[size] = [2]uint64{cur, max}
	}
	return out
}

// readPressure reads the total stall times of a PSI file: "some ... total=N"
// and "full ... total=N", in microseconds.
func readPressure(path string) (some, full time.Duration, ok bool) {
	b, err := ReadSmallFile(path)
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		for _, kv := range f[1:] {
			if v, found := strings.CutPrefix(kv, "total="); found {
				n, _ := strconv.ParseUint(v, 10, 64)
				if f[0] == "some" {
					some = time.Duration(n) * time.Microsecond
				} else if f[0] == "full" {
					full = time.Duration(n) * time.Microsecond
				}
			}
		}
	}
	return some, full, true
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func readUint(path string) (uint64, error) { return (*StatFiles)(nil).uint(path) }

func (f *StatFiles) uint(path string) (uint64, error) {
	b, err := f.read(path, make([]byte, 0, 32))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
}

// readStatFile reads a cgroup file into buf, grown when a read fills it.
// A cgroup's stat files are one record each (kernfs's seq_show), so a read
// shorter than asked is the whole file: the read at the end that returns
// nothing is not made — a quarter of a stats call's system calls, and a
// thousand pods' stats make ten thousand.
func readStatFile(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	return preadStatFile(fd, path, buf)
}

// preadStatFile reads the open stat file fd from its start: kernfs makes
// a read at offset 0 anew, so an fd kept open reads today's counters.
func preadStatFile(fd int, path string, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		room := cap(buf) - len(buf)
		n, err := unix.Pread(fd, buf[len(buf):cap(buf)], int64(len(buf)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		buf = buf[:len(buf)+n]
		if n < room {
			return buf, nil
		}
	}
}

// readKeyed reads a cgroup file of "key value" lines.
func readKeyed(path string) (map[string]uint64, error) { return (*StatFiles)(nil).keyed(path) }

func (f *StatFiles) keyed(path string) (map[string]uint64, error) {
	b, err := f.read(path, make([]byte, 0, 2048))
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, 48)
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		k, v, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64); err == nil {
			out[string(k)] = n
		}
	}
	return out, nil
}
