package dockerapi

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

// healthConfig is Docker's (durations in nanoseconds).
type healthConfig struct {
	Test                                          []string
	Interval, Timeout, StartPeriod, StartInterval time.Duration
	Retries                                       int
}

type healthResult struct {
	Start, End time.Time
	ExitCode   int
	Output     string
}

type healthState struct {
	Status        string
	FailingStreak int
	Log           []healthResult
	cancel        context.CancelFunc
}

// healths are the running probes and their containers' health.
type healths struct {
	mu sync.Mutex
	m  map[string]*healthState
}

// get is a copy of id's health (nil: the container has no check).
func (h *healths) get(id string) *healthState {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.m[id]
	if !ok {
		return nil
	}
	c := *st
	c.Log = append([]healthResult(nil), st.Log...)
	return &c
}

// healthcheck is what c runs as its check: the request's, else the
// image's; nil for none (or "NONE").
func (s *Server) healthcheck(c store.Container) *healthConfig {
	var req struct{ Healthcheck *healthConfig }
	_ = json.Unmarshal(c.Config, &req)
	hc := req.Healthcheck
	if hc == nil || len(hc.Test) == 0 {
		if img, err := s.images.Resolve(c.ImageID); err == nil {
			var cfg struct {
				Config struct{ Healthcheck *healthConfig }
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
func (s *Server) startHealth(ctx context.Context, c store.Container) {
	hc := s.healthcheck(c)
	if hc == nil {
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	s.health.mu.Lock()
	if s.health.m == nil {
		s.health.m = map[string]*healthState{}
	}
	if old := s.health.m[c.ID]; old != nil && old.cancel != nil {
		old.cancel()
	}
	s.health.m[c.ID] = &healthState{Status: "starting", cancel: cancel}
	s.health.mu.Unlock()
	go s.probe(pctx, c.ID, *hc)
}

// stopHealth ends c's probe; forget also drops its state (removed).
func (s *Server) stopHealth(id string, forget bool) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if st := s.health.m[id]; st != nil {
		if st.cancel != nil {
			st.cancel()
			st.cancel = nil
		}
		if forget {
			delete(s.health.m, id)
		}
	}
}

func (s *Server) probe(ctx context.Context, id string, hc healthConfig) {
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
		r := healthResult{Start: time.Now(), ExitCode: -1}
		res, err := s.containers.ExecSync(ctx, id, cmd, timeout)
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
		s.health.mu.Lock()
		st := s.health.m[id]
		if st == nil || st.cancel == nil {
			s.health.mu.Unlock()
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
		s.health.mu.Unlock()
		if now != was {
			s.events.publish("container", "health_status: "+now, id, nil)
		}
	}
}

// healthJSON is inspect's State.Health.
func healthJSON(st *healthState) map[string]any {
	logs := []map[string]any{}
	for _, r := range st.Log {
		logs = append(logs, map[string]any{"Start": r.Start.Format(time.RFC3339Nano), "End": r.End.Format(time.RFC3339Nano),
			"ExitCode": r.ExitCode, "Output": r.Output})
	}
	return map[string]any{"Status": st.Status, "FailingStreak": st.FailingStreak, "Log": logs}
}

// healthStatus is id's health for ps --filter health=: "none" without a check.
func (s *Server) healthStatus(id string) string {
	if st := s.health.get(id); st != nil {
		return st.Status
	}
	return "none"
}

// healthOrNil is inspect's State.Health, absent without a check.
func (s *Server) healthOrNil(id string) any {
	if st := s.health.get(id); st != nil {
		return healthJSON(st)
	}
	return nil
}

// statusWithHealth is ps's Status: "Up 3 minutes (healthy)".
func (s *Server) statusWithHealth(c store.Container) string {
	st := dockerStatus(c)
	if h := s.health.get(c.ID); h != nil && c.State == store.ContainerRunning && !c.Paused {
		if h.Status == "starting" {
			return st + " (health: starting)"
		}
		return st + " (" + h.Status + ")"
	}
	return st
}
