package containers

import "time"

// recent is a map of samples by object ID whose entries unseen for five
// minutes are dropped (looked for once a minute), so that removed
// containers and pods leave nothing behind. Its owner locks it.
type recent[V any] struct {
	m      map[string]stamped[V]
	pruned time.Time
}

// stamped is a sample and when it was taken.
type stamped[V any] struct {
	at time.Time
	v  V
}

func (r *recent[V]) get(id string) (stamped[V], bool) {
	s, ok := r.m[id]
	return s, ok
}

// put records id's sample taken at at.
func (r *recent[V]) put(id string, at time.Time, v V) {
	if r.m == nil {
		r.m = map[string]stamped[V]{}
	}
	if at.Sub(r.pruned) > time.Minute {
		for k, s := range r.m {
			if at.Sub(s.at) > 5*time.Minute {
				delete(r.m, k)
			}
		}
		r.pruned = at
	}
	r.m[id] = stamped[V]{at, v}
}

func (r *recent[V]) delete(id string) { delete(r.m, id) }
