package containers

import (
	"sync"
	"time"
)

// cpuRates turns cumulative CPU time into a rate (nanocores: CPU
// nanoseconds per second), as kubelet's summary API wants it, from the
// previous sample of the same container or pod. Samples unseen for five
// minutes are dropped, so that removed objects leave nothing behind.
type cpuRates struct {
	mu   sync.Mutex
	last recent[uint64]
}

// rate records the sample and returns the rate since the previous one (ok
// false for a first sample, or one from an older cgroup).
func (r *cpuRates) rate(id string, at time.Time, nanos uint64) (nanoCores uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, seen := r.last.get(id)
	r.last.put(id, at, nanos)
	dt := at.Sub(prev.at)
	if !seen || dt <= 0 || nanos < prev.v {
		return 0, false
	}
	return uint64(float64(nanos-prev.v) / dt.Seconds()), true
}
