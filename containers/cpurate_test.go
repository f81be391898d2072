package containers

import (
	"testing"
	"time"
)

func TestCPURate(t *testing.T) {
	var r cpuRates
	t0 := time.Unix(1000, 0)
	if _, ok := r.rate("c", t0, 5e9); ok {
		t.Fatal("a first sample has no rate")
	}
	// Half a CPU for two seconds.
	if n, ok := r.rate("c", t0.Add(2*time.Second), 6e9); !ok || n != 5e8 {
		t.Fatalf("rate %d %v, want 5e8", n, ok)
	}
	// A counter that went back is a new cgroup: no rate from the old one.
	if _, ok := r.rate("c", t0.Add(3*time.Second), 1e9); ok {
		t.Fatal("rate across a reset")
	}
	r.rate("old", t0, 1)
	r.rate("c", t0.Add(10*time.Minute), 2e9)
	if _, kept := r.last.get("old"); kept {
		t.Fatal("a sample unseen for ten minutes is kept")
	}
}
