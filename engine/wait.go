package engine

import (
	"context"
	"sync"
	"time"

	"github.com/berth-runtime/berth/internal/store"
)

// WaitFor returns once done says so of container id's record (gone: it was
// removed), woken by the containers service's events rather than polling,
// with a slow tick as a safety net.
func (e *Engine) WaitFor(ctx context.Context, id string, done func(rec store.Container, gone bool) bool) (store.Container, bool, error) {
	ev, stop := e.containers.Subscribe()
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		rec, err := e.containers.Get(id)
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
	// done is closed when the removal is complete (volumes too): a client
	// waiting for "removed" is answered then, as dockerd answers it.
	done chan struct{}
}

// put keeps id's exit code; the returned function marks its removal complete.
func (e *exitCodes) put(id string, code int32) (removed func()) {
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
	done := make(chan struct{})
	e.m[id] = exitCode{code, time.Now(), done}
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// get is id's exit code, once its removal is complete (or ctx ends).
func (e *exitCodes) get(ctx context.Context, id string) (int32, bool) {
	e.mu.Lock()
	v, ok := e.m[id]
	e.mu.Unlock()
	if ok {
		select {
		case <-v.done:
		case <-ctx.Done():
		}
	}
	return v.code, ok
}

// Wait returns c's exit code once it has exited (removed: once it is gone
// too, its exit code kept by --rm's removal), or ctx's error.
func (e *Engine) Wait(ctx context.Context, id string, removed bool) (int32, error) {
	rec, gone, err := e.WaitFor(ctx, id, func(rec store.Container, gone bool) bool {
		return gone || rec.State == store.ContainerExited && !removed
	})
	if err != nil {
		return 0, err
	}
	if gone {
		code, _ := e.exits.get(ctx, id)
		return code, nil
	}
	return rec.ExitCode, nil
}
