package dockerapi

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/store"
)

// Restart policies (`docker run --restart`), carried out by berthd: a
// container that exits is started again (with Docker's backoff, 100 ms
// doubling, reset after ten seconds up) when its policy says so: always;
// on-failure with a non-zero code, up to its count; unless-stopped unless
// the user stopped it. When berthd starts, the containers of always and
// unless-stopped that the user had not stopped run again.

// stopMarks remember which containers the user stopped, on disk so that a
// berthd restart knows too: <docker dir>/stopped/<id>.
type stopMarks struct{ dir string }

func (m stopMarks) path(id string) string { return filepath.Join(m.dir, id) }

func (m stopMarks) mark(id string) {
	_ = os.MkdirAll(m.dir, 0o700)
	_ = os.WriteFile(m.path(id), nil, 0o600)
}

func (m stopMarks) clear(id string) { _ = os.Remove(m.path(id)) }

func (m stopMarks) marked(id string) bool {
	_, err := os.Stat(m.path(id))
	return err == nil
}

func policyName(b createBody) string {
	if n := b.HostConfig.RestartPolicy.Name; n != "" {
		return n
	}
	return "no"
}

// wantsRestart says whether c's policy starts it again after this exit.
func (s *Server) wantsRestart(c store.Container, boot bool) bool {
	var b createBody
	if json.Unmarshal(c.Config, &b) != nil || s.stops.marked(c.ID) {
		return false
	}
	p := b.HostConfig.RestartPolicy
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return !boot && c.ExitCode != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// Run carries out restart policies and health checks, and records the
// containers' events, until ctx ends;
// berthd runs it once its containers are recovered.
func (s *Server) Run(ctx context.Context) {
	go s.recordContainerEvents(ctx)
	ev, stop := s.containers.Subscribe()
	defer stop()
	all, _ := s.containers.ListOwned(Owner)
	for _, c := range all {
		if c.State == store.ContainerExited && s.wantsRestart(c, true) {
			go s.restartLater(ctx, c, 0)
		}
		if c.State == store.ContainerRunning {
			s.startHealth(ctx, c)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-ev:
			switch e.Type {
			case containers.EventStarted:
				if c, err := s.containers.Get(e.ContainerID); err == nil && c.Owner == Owner {
					s.startHealth(ctx, c)
				}
				continue
			case containers.EventDeleted:
				s.stopHealth(e.ContainerID, true)
				continue
			case containers.EventStopped:
				s.stopHealth(e.ContainerID, false)
			default:
				continue
			}
			c, err := s.containers.Get(e.ContainerID)
			if err != nil || c.Owner != Owner || !s.wantsRestart(c, false) {
				continue
			}
			delay := 100 * time.Millisecond << min(c.RestartCount, 10)
			if !c.StartedAt.IsZero() && c.FinishedAt.Sub(c.StartedAt) > 10*time.Second {
				delay = 100 * time.Millisecond // it ran a good while: the backoff starts over
			}
			go s.restartLater(ctx, c, delay)
		}
	}
}

func (s *Server) restartLater(ctx context.Context, c store.Container, delay time.Duration) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(delay):
	}
	// Still exited and still wanted (not stopped, removed or started meanwhile).
	cur, err := s.containers.Get(c.ID)
	if err != nil || cur.State != store.ContainerExited || !s.wantsRestart(cur, false) && !s.wantsRestart(cur, true) {
		return
	}
	if err := s.containers.Restart(ctx, c.ID); err != nil {
		s.log.Warn("restart policy", "container", c.ID, "error", err)
	}
}
