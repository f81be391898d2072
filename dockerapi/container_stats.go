package dockerapi

import (
	"encoding/json"
	"net/http"
	"runtime"
	"time"

	"github.com/berth-runtime/berth/engine"
	"github.com/berth-runtime/berth/internal/store"
)

// containerStats is `docker stats`: Docker's stats JSON, one object a
// second (stream), or one with a second's CPU delta (stream=false), or
// at once (one-shot). The CLI computes CPU % from the deltas against
// the host's CPU time, as with dockerd.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	stream := boolParamOr(r, "stream", true)
	oneShot := boolParam(r, "one-shot")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	prev := s.engine.Sample(c)
	for {
		if !oneShot {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
		}
		cur := s.engine.Sample(c)
		_ = enc.Encode(statsJSON(c, prev, cur))
		flusher(w)()
		if !stream || oneShot {
			return
		}
		prev = cur
		if rec, err := s.engine.Lookup(c.ID); err != nil || rec.State != store.ContainerRunning {
			return
		}
	}
}

// statsJSON is one of Docker's stats objects: cur, with prev's CPU times
// as precpu_stats.
func statsJSON(c store.Container, prev, cur engine.Sample) map[string]any {
	nets := map[string]any{}
	for _, i := range cur.Networks {
		nets[i.Name] = map[string]uint64{"rx_bytes": i.RxBytes, "rx_packets": i.RxPackets, "rx_errors": i.RxErrors, "rx_dropped": i.RxDropped,
			"tx_bytes": i.TxBytes, "tx_packets": i.TxPackets, "tx_errors": i.TxErrors, "tx_dropped": i.TxDropped}
	}
	return map[string]any{
		"id": c.ID, "name": "/" + c.Name, "read": cur.At.Format(time.RFC3339Nano), "preread": prev.At.Format(time.RFC3339Nano),
		"cpu_stats":    cpuStats(cur),
		"precpu_stats": cpuStats(prev),
		"memory_stats": map[string]any{"usage": cur.Memory, "limit": cur.MemoryLimit, "stats": map[string]uint64{
			"inactive_file": cur.Memory - cur.WorkingSet, "total_inactive_file": cur.Memory - cur.WorkingSet,
			"rss": cur.RSS, "cache": cur.Cache}},
		"pids_stats":  map[string]uint64{"current": cur.Pids},
		"networks":    nets,
		"blkio_stats": map[string]any{"io_service_bytes_recursive": []any{}},
	}
}

func cpuStats(st engine.Sample) map[string]any {
	return map[string]any{
		"cpu_usage":        map[string]uint64{"total_usage": st.CPUNanos, "usage_in_kernelmode": st.SystemNanos, "usage_in_usermode": st.UserNanos},
		"system_cpu_usage": st.HostCPUNanos, "online_cpus": runtime.NumCPU(),
		"throttling_data": map[string]uint64{"periods": st.Periods, "throttled_periods": st.ThrottledPeriods, "throttled_time": st.ThrottledNanos},
	}
}

// containerTop is `docker top`: the container's processes as the host sees them.
func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	procs, err := s.engine.Top(c)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"Titles": []string{"UID", "PID", "PPID", "CMD"}, "Processes": procs})
}
