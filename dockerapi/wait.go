package dockerapi

import (
	"context"
	"sync"
	"time"

	"github.com/berth-runtime/berth/internal/store"
)

// waitFor returns once done says so of container id's record (gone: it was
// removed), woken by the containers service's events rather than polling,
// with a slow tick as a safety net.
func (s *Server) waitFor(ctx context.Context, id string, done func(rec store.Container, gone bool) bool) (store.Container, bool, error) {
	ev, stop := s.containers.Subscribe()
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		rec, err := s.containers.Get(id)
		gone := err != nil
		if done(rec, gone) {
			return rec, gone, nil
		}
	next:
		select {
		case <-ctx.Done():
			return rec, gone, ctx.Err()
		case e := <-ev:
			if e.ContainerID != id {
				goto next
			}
		case <-tick.C:
		}
	}
}

// exitCodes keeps the exit codes of containers `--rm` removed, for the
// client still waiting on them; a few minutes are enough.
type exitCodes struct {
	mu sync.Mutex
	m  map[string]exitCode
}

type exitCode struct {
	code int32
	at   time.Time
}

func (e *exitCodes) put(id string, code int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]exitCode{}
	}
	for k, v := range e.m {
		if time.Since(v.at) > 5*time.Minute {
			delete(e.m, k)
		}
	}
	e.m[id] = exitCode{code, time.Now()}
}

func (e *exitCodes) get(id string) (int32, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.m[id]
	return v.code, ok
}
