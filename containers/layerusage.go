package containers

import (
	"sync"
	"time"

	"github.com/berth-runtime/berth/images/snapshot"
)

// layerUsageFresh is how long a writable layer's measure is answered again:
// containerd's CRI refreshes its snapshots' sizes every 10 s too. kubelet's
// eviction manager, summary API and resource metrics each ask for every
// pod's stats within such a span; walking a thousand layers once serves them
// all (a fifth of a ListPodSandboxStats at 1,000 pods).
const layerUsageFresh = 10 * time.Second

// layerUsages remembers each container's writable-layer measure for
// layerUsageFresh; measures unasked for five minutes are dropped, so that
// removed containers leave nothing behind.
type layerUsages struct {
	mu   sync.Mutex
	last recent[snapshot.Usage]
}

// get is id's measure: the one made within layerUsageFresh of now, or a new
// one from measure.
func (l *layerUsages) get(id string, now time.Time, measure func(string) (snapshot.Usage, error)) (snapshot.Usage, error) {
	l.mu.Lock()
	prev, ok := l.last.get(id)
	l.mu.Unlock()
	if age := now.Sub(prev.at); ok && age >= 0 && age < layerUsageFresh {
		return prev.v, nil
	}
	u, err := measure(id)
	if err != nil {
		return u, err
	}
	l.mu.Lock()
	l.last.put(id, now, u)
	l.mu.Unlock()
	return u, nil
}

// forget drops id's measure: its layer went, or a new one is wanted now.
func (l *layerUsages) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last.delete(id)
}
