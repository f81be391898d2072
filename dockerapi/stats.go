package dockerapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
)

func (s *Server) routeStats() {
	s.mux.HandleFunc("GET /containers/{id}/stats", s.containerStats)
	s.mux.HandleFunc("GET /containers/{id}/top", s.containerTop)
}

// containerStats is `docker stats`: Docker's stats JSON, one object a
// second (stream), or one with a second's CPU delta (stream=false), or
// at once (one-shot). The CLI computes CPU % from the deltas against
// the host's CPU time, as with dockerd.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	stream := r.URL.Query().Get("stream") != "0" && r.URL.Query().Get("stream") != "false"
	oneShot := boolParam(r, "one-shot")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	prev, prevSys := s.sample(c)
	for {
		if !oneShot {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
		}
		cur, curSys := s.sample(c)
		sb, _ := s.sandboxes.Get(c.SandboxID)
		nets := map[string]any{}
		if ifs, err := s.sandboxes.NetworkStats(sb); err == nil {
			for _, i := range ifs {
				nets[i.Name] = map[string]uint64{"rx_bytes": i.RxBytes, "rx_packets": i.RxPackets, "rx_errors": i.RxErrors, "rx_dropped": i.RxDropped,
					"tx_bytes": i.TxBytes, "tx_packets": i.TxPackets, "tx_errors": i.TxErrors, "tx_dropped": i.TxDropped}
			}
		}
		limit := s.containers.Limits(c).Memory
		if limit == 0 {
			limit = hostMemory()
		}
		_ = enc.Encode(map[string]any{
			"id": c.ID, "name": "/" + c.Name, "read": cur.At.Format(time.RFC3339Nano), "preread": prev.At.Format(time.RFC3339Nano),
			"cpu_stats":    cpuStats(cur, curSys),
			"precpu_stats": cpuStats(prev, prevSys),
			"memory_stats": map[string]any{"usage": cur.Memory, "limit": limit, "stats": map[string]uint64{
				"inactive_file": cur.Memory - cur.WorkingSet, "total_inactive_file": cur.Memory - cur.WorkingSet,
				"rss": cur.RSS, "cache": cur.Cache}},
			"pids_stats":  map[string]uint64{"current": cur.Pids},
			"networks":    nets,
			"blkio_stats": map[string]any{"io_service_bytes_recursive": []any{}},
		})
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if !stream || oneShot {
			return
		}
		prev, prevSys = cur, curSys
		if rec, err := s.containers.Get(c.ID); err != nil || rec.State != store.ContainerRunning {
			return
		}
	}
}

func (s *Server) sample(c store.Container) (containers.Stats, uint64) {
	st, _ := s.containers.StatsFull(c)
	return st, hostCPUNanos()
}

func cpuStats(st containers.Stats, system uint64) map[string]any {
	return map[string]any{
		"cpu_usage":        map[string]uint64{"total_usage": st.CPUNanos, "usage_in_kernelmode": st.SystemNanos, "usage_in_usermode": st.UserNanos},
		"system_cpu_usage": system, "online_cpus": runtime.NumCPU(),
		"throttling_data": map[string]uint64{"periods": st.Periods, "throttled_periods": st.ThrottledPeriods, "throttled_time": st.ThrottledNanos},
	}
}

// hostCPUNanos is the host's CPU time (all CPUs, all modes) from /proc/stat,
// in nanoseconds, as dockerd reports system_cpu_usage.
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

// containerTop is `docker top`: the container's processes as the host sees them.
func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if c.State != store.ContainerRunning {
		writeError(w, fmt.Errorf("Container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition))
		return
	}
	pids, err := linux.CgroupProcs(c.CgroupsPath)
	if err != nil {
		writeError(w, err)
		return
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
	writeJSON(w, http.StatusOK, map[string]any{"Titles": []string{"UID", "PID", "PPID", "CMD"}, "Processes": procs})
}
