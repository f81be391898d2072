package engine

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/berth-runtime/berth/internal/store"
)

// HEALTHCHECK, from the image or the create request, carried out by
// berthd: while a container runs, its test runs as an exec every interval
// (every start interval during the start period, whose failures do not
// count); retries failures in a row make it unhealthy, one success healthy.
// The state lives in memory, as the probes do: after a berthd restart a
// running container starts over as "starting".

// HealthConfig is Docker's (durations in nanoseconds).
type HealthConfig struct {
	Test                                          []string
	Interval, Timeout, StartPeriod, StartInterval time.Duration
	Retries                                       int
}

// HealthResult is one probe's outcome.
type HealthResult struct {
	Start, End time.Time
	ExitCode   int
	Output     string
}

// Health is a container's health as inspect shows it: its status
// (starting, healthy, unhealthy), its failures in a row, the last probes.
type Health struct {
	Status        string
	FailingStreak int
	Log           []HealthResult
}

type healthState struct {
	Health
	cancel context.CancelFunc
}

// healths are the running probes and their containers' health.
type healths struct {
	mu sync.Mutex
	m  map[string]*healthState
}

// get is a copy of id's health (nil: the container has no check).
func (h *healths) get(id string) *Health {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.m[id]
	if !ok {
		return nil
	}
	c := st.Health
	c.Log = append([]HealthResult(nil), st.Log...)
	return &c
}

// healthcheck is what c runs as its check: the request's, else the
// image's; nil for none (or "NONE").
func (e *Engine) healthcheck(c store.Container) *HealthConfig {
	hc := ConfigOf(c).Healthcheck
	if hc == nil || len(hc.Test) == 0 {
		if img, err := e.images.Resolve(c.ImageID); err == nil {
			var cfg struct {
				Config struct{ Healthcheck *HealthConfig }
			}
			if json.Unmarshal(img.Config, &cfg) == nil && cfg.Config.Healthcheck != nil {
				base := *cfg.Config.Healthcheck
				if hc != nil { // the request's timings over the image's test
					base.Interval, base.Timeout = cmpDur(hc.Interval, base.Interval), cmpDur(hc.Timeout, base.Timeout)
					base.StartPeriod, base.StartInterval = cmpDur(hc.StartPeriod, base.StartPeriod), cmpDur(hc.StartInterval, base.StartInterval)
					if hc.Retries > 0 {
						base.Retries = hc.Retries
					}
				}
				hc = &base
			}
		}
	}
	if hc == nil || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
		return nil
	}
	return hc
}

func cmpDur(a, b time.Duration) time.Duration {
	if a > 0 {
		return a
	}
	return b
}

// startHealth begins probing c (a running container), replacing any probe of it.
func (e *Engine) startHealth(ctx context.Context, c store.Container) {
	hc := e.healthcheck(c)
	if hc == nil {
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	e.health.mu.Lock()
	if e.health.m == nil {
		e.health.m = map[string]*healthState{}
	}
	if old := e.health.m[c.ID]; old != nil && old.cancel != nil {
		old.cancel()
	}
	e.health.m[c.ID] = &healthState{Health: Health{Status: "starting"}, cancel: cancel}
	e.health.mu.Unlock()
	go e.probe(pctx, c.ID, *hc)
}

// stopHealth ends c's probe; forget also drops its state (removed).
func (e *Engine) stopHealth(id string, forget bool) {
	e.health.mu.Lock()
	defer e.health.mu.Unlock()
	if st := e.health.m[id]; st != nil {
		if st.cancel != nil {
			st.cancel()
			st.cancel = nil
		}
		if forget {
			delete(e.health.m, id)
		}
	}
}

func (e *Engine) probe(ctx context.Context, id string, hc HealthConfig) {
	interval, timeout := cmpDur(hc.Interval, 30*time.Second), cmpDur(hc.Timeout, 30*time.Second)
	startInterval, retries := cmpDur(hc.StartInterval, 5*time.Second), hc.Retries
	if retries <= 0 {
		retries = 3
	}
	var cmd []string
	switch hc.Test[0] {
	case "CMD":
		cmd = hc.Test[1:]
	case "CMD-SHELL":
		cmd = append([]string{"/bin/sh", "-c"}, hc.Test[1:]...)
	default:
		cmd = hc.Test
	}
	began := time.Now()
	for {
		inStart := time.Since(began) < hc.StartPeriod
		wait := interval
		if inStart {
			wait = startInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		r := HealthResult{Start: time.Now(), ExitCode: -1}
		res, err := e.containers.ExecSync(ctx, id, cmd, timeout)
		r.End = time.Now()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.Output = err.Error()
		case res.TimedOut:
			r.Output = "Health check exceeded timeout (" + timeout.String() + ")"
		default:
			r.ExitCode = int(res.ExitCode)
			out := append(res.Stdout, res.Stderr...)
			r.Output = string(out[:min(len(out), 4096)])
		}
		e.health.mu.Lock()
		st := e.health.m[id]
		if st == nil || st.cancel == nil {
			e.health.mu.Unlock()
			return
		}
		st.Log = append(st.Log, r)
		if len(st.Log) > 5 {
			st.Log = st.Log[len(st.Log)-5:]
		}
		was := st.Status
		switch {
		case r.ExitCode == 0:
			st.Status, st.FailingStreak = "healthy", 0
		case inStart && st.Status == "starting":
			// A failure in the start period does not count.
		default:
			if st.FailingStreak++; st.FailingStreak >= retries {
				st.Status = "unhealthy"
			}
		}
		now := st.Status
		e.health.mu.Unlock()
		if now != was {
			e.events.publish("container", "health_status: "+now, id, nil)
		}
	}
}

// Health is id's health (nil: the container has no check).
func (e *Engine) Health(id string) *Health { return e.health.get(id) }

// HealthStatus is id's health for ps --filter health=: "none" without a check.
func (e *Engine) HealthStatus(id string) string {
	if st := e.health.get(id); st != nil {
		return st.Status
	}
	return "none"
}

// Status is ps's Status: "Up 3 minutes (healthy)".
func (e *Engine) Status(c store.Container) string {
	st := Status(c)
	if h := e.health.get(c.ID); h != nil && c.State == store.ContainerRunning && !c.Paused {
		if h.Status == "starting" {
			return st + " (health: starting)"
		}
		return st + " (" + h.Status + ")"
	}
	return st
}
