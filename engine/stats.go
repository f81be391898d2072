package engine

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/sandbox"
)

// What `docker stats` and `docker top` read: the container's cgroup, its
// pod's interfaces, the host's CPU time and memory.

// Sample is one reading of a container's usage for `docker stats`.
type Sample struct {
	containers.Stats
	// HostCPUNanos is the host's CPU time (all CPUs, all modes), as dockerd
	// reports system_cpu_usage; MemoryLimit the container's limit, the
	// host's memory without one.
	HostCPUNanos, MemoryLimit uint64
	Networks                  []sandbox.Interface
}

// Sample reads c's usage now.
func (e *Engine) Sample(c store.Container) Sample {
	st, _ := e.containers.StatsFull(c)
	s := Sample{Stats: st, HostCPUNanos: hostCPUNanos(), MemoryLimit: e.containers.Limits(c).Memory}
	if s.MemoryLimit == 0 {
		s.MemoryLimit = hostMemory()
	}
	if sb, err := e.sandboxes.Get(c.SandboxID); err == nil {
		s.Networks, _ = e.sandboxes.NetworkStats(sb)
	}
	return s
}

// hostCPUNanos is the host's CPU time from /proc/stat, in nanoseconds.
func hostCPUNanos() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var ticks uint64
	for _, f := range strings.Fields(line)[1:] {
		n, _ := strconv.ParseUint(f, 10, 64)
		ticks += n
	}
	return ticks * 1e7 // USER_HZ is 100
}

func hostMemory() uint64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			n, _ := strconv.ParseUint(strings.Fields(v)[0], 10, 64)
			return n << 10
		}
	}
	return 0
}

// Top is `docker top`: c's processes as the host sees them (UID, PID,
// PPID, CMD).
func (e *Engine) Top(c store.Container) ([][]string, error) {
	if c.State != store.ContainerRunning {
		return nil, fmt.Errorf("Container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	pids, err := linux.CgroupProcs(c.CgroupsPath)
	if err != nil {
		return nil, err
	}
	procs := [][]string{}
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The fields after the command's closing parenthesis: state, ppid, ...
		rest := string(stat)[strings.LastIndexByte(string(stat), ')')+2:]
		f := strings.Fields(rest)
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		uid := ""
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			for _, l := range strings.Split(string(st), "\n") {
				if v, ok := strings.CutPrefix(l, "Uid:"); ok {
					uid = strings.Fields(v)[0]
				}
			}
		}
		procs = append(procs, []string{uid, strconv.Itoa(pid), f[1], strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))})
	}
	return procs, nil
}
