package containers

import (
	"errors"
	"testing"
	"time"

	"github.com/berth-runtime/berth/images/snapshot"
)

// TestLayerUsages: a measure is answered again within layerUsageFresh, made
// anew after it, after forget, and after a failed one; measures unasked for
// five minutes go.
func TestLayerUsages(t *testing.T) {
	var l layerUsages
	calls := 0
	var fail error
	measure := func(string) (snapshot.Usage, error) {
		calls++
		return snapshot.Usage{Bytes: uint64(calls)}, fail
	}
	t0 := time.Now()
	get := func(at time.Time) uint64 {
		u, _ := l.get("c1", at, measure)
		return u.Bytes
	}
	if get(t0) != 1 || get(t0.Add(layerUsageFresh/2)) != 1 {
		t.Errorf("within the fresh span the layer was measured again (%d measures)", calls)
	}
	if get(t0.Add(layerUsageFresh)) != 2 {
		t.Errorf("a measure older than the fresh span was answered (%d measures)", calls)
	}
	l.forget("c1")
	if get(t0.Add(layerUsageFresh)) != 3 {
		t.Error("forget kept the measure")
	}
	fail = errors.New("gone")
	l.forget("c1")
	get(t0.Add(layerUsageFresh))
	fail = nil
	if get(t0.Add(layerUsageFresh)) != 5 {
		t.Error("a failed measure was kept")
	}
	if _, err := l.get("c2", t0.Add(10*time.Minute), measure); err != nil || len(l.last.m) != 1 {
		t.Errorf("after five minutes unasked, %d measures kept, want only the new one", len(l.last.m))
	}
}
