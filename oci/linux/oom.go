package linux

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MemoryCgroupOf returns the host directory of pid's memory cgroup (v1) or
// of its cgroup (v2), whichever runtime put it there.
func MemoryCgroupOf(pid int) (string, error) {
	l, err := detectCgroupLayout()
	if err != nil {
		return "", err
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if l.Unified != "" && parts[0] == "0" && parts[1] == "" {
			return filepath.Join(l.Unified, parts[2]), nil
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" && l.V1["memory"] != "" {
				return filepath.Join(l.V1["memory"], parts[2]), nil
			}
		}
	}
	return "", fmt.Errorf("process %d has no memory cgroup", pid)
}

// OOMKills returns how many processes the kernel's OOM killer has killed in
// the memory cgroup dir (v1 memory.oom_control, v2 memory.events).
func OOMKills(dir string) (uint64, error) {
	for _, file := range []string{"memory.events", "memory.oom_control"} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			continue
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
				return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			}
		}
		return 0, nil
	}
	return 0, fmt.Errorf("no OOM counters in %s", dir)
}
