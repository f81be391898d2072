package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/errdefs"
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

// checkPolicy refuses a restart policy Docker does not know, and one
// beside --rm.
func checkPolicy(p RestartPolicy, autoRemove bool) error {
	switch {
	case p.Name != "" && p.Name != "no" && p.Name != "always" && p.Name != "on-failure" && p.Name != "unless-stopped":
		return fmt.Errorf("invalid restart policy %q: want no, always, on-failure or unless-stopped: %w", p.Name, errdefs.ErrInvalidArgument)
	case p.Name != "" && p.Name != "no" && autoRemove:
		return fmt.Errorf("conflicting options: cannot specify both --restart and --rm: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// restartDelay is Docker's backoff before restarting c: 100 ms doubling
// with each restart, back to 100 ms after ten seconds up.
func restartDelay(c store.Container) time.Duration {
	if !c.StartedAt.IsZero() && c.FinishedAt.Sub(c.StartedAt) > 10*time.Second {
		return 100 * time.Millisecond
	}
	return 100 * time.Millisecond << min(c.RestartCount, 10)
}

// wantsRestart says whether c's policy starts it again after this exit.
func (e *Engine) wantsRestart(c store.Container, boot bool) bool {
	if e.stops.marked(c.ID) {
		return false
	}
	p := ConfigOf(c).HostConfig.RestartPolicy
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
func (e *Engine) Run(ctx context.Context) {
	go e.recordContainerEvents(ctx)
	events, stop := e.containers.Subscribe()
	defer stop()
	all, _ := e.containers.ListOwned(Owner)
	for _, c := range all {
		if c.State == store.ContainerExited && e.wantsRestart(c, true) {
			go e.restartLater(ctx, c, 0)
		}
		if c.State == store.ContainerRunning {
			e.startHealth(ctx, c)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			switch ev.Type {
			case containers.EventStarted:
				if c, err := e.containers.Get(ev.ContainerID); err == nil && c.Owner == Owner {
					e.startHealth(ctx, c)
				}
				continue
			case containers.EventDeleted:
				e.stopHealth(ev.ContainerID, true)
				continue
			case containers.EventStopped:
				e.stopHealth(ev.ContainerID, false)
			default:
				continue
			}
			c, err := e.containers.Get(ev.ContainerID)
			if err != nil || c.Owner != Owner || !e.wantsRestart(c, false) {
				continue
			}
			go e.restartLater(ctx, c, restartDelay(c))
		}
	}
}

func (e *Engine) restartLater(ctx context.Context, c store.Container, delay time.Duration) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(delay):
	}
	// Still exited and still wanted (not stopped, removed or started meanwhile).
	cur, err := e.containers.Get(c.ID)
	if err != nil || cur.State != store.ContainerExited || !e.wantsRestart(cur, false) && !e.wantsRestart(cur, true) {
		return
	}
	if err := e.containers.Restart(ctx, c.ID); err != nil {
		e.log.Warn("restart policy", "container", c.ID, "error", err)
	}
}
