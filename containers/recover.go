package containers

import (
	"context"
	"log/slog"

	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/shim"
)

// Recover reconciles records with the shims after a berthd start: running
// containers get their exit monitors back; exits that happened while berthd
// was away are recorded; containers whose creation was cut short are removed.
// It returns how many containers had each outcome: reattached (running,
// watched again), exited (while berthd was away), orphaned (shim gone, killed)
// and removed (creation cut short).
func (s *Service) Recover(ctx context.Context) (map[string]int, error) {
	all, err := s.db.Containers.List()
	if err != nil {
		return nil, err
	}
	outcomes := map[string]int{}
	for _, rec := range all {
		if rec.State == store.ContainerExited {
			continue
		}
		st, version, err := s.client(rec).Hello(ctx)
		if err == nil && version != shim.ProtocolVersion {
			// Served with what both speak; newer features wait for a restart of the container.
			s.log.Info("container's shim speaks another protocol version", slog.String("container", rec.ID),
				slog.Int("shim", version), slog.Int("berthd", shim.ProtocolVersion))
		}
		switch {
		case unresponsive(err):
			// Alive but not answering: keep waiting for it, never kill on a guess.
			s.log.Warn("container's shim did not answer at recovery; watching it", slog.String("container", rec.ID))
			s.monitor(rec)
			outcomes["reattached"]++
		case err == nil && st.Exit != nil:
			s.recordExit(rec.ID, st.Exit)
			outcomes["exited"]++
		case err == nil:
			if rec.State == store.ContainerCreated && !st.Started.IsZero() {
				_, _ = s.db.Containers.Update(rec.ID, func(c *store.Container) error {
					c.State, c.StartedAt = store.ContainerRunning, st.Started
					return nil
				})
			}
			s.monitor(rec)
			outcomes["reattached"]++
		default:
			if e, rerr := shim.ReadExit(rec.Dir); rerr == nil {
				s.recordExit(rec.ID, e)
				outcomes["exited"]++
				continue
			}
			if rec.Pid == 0 {
				// Cut short during Create, before its shim answered.
				s.log.Warn("removing a container whose creation was interrupted", slog.String("container", rec.ID))
				_ = s.Remove(ctx, rec.ID)
				outcomes["removed"]++
				continue
			}
			s.recordExit(rec.ID, s.killOrphan(rec))
			outcomes["orphaned"]++
		}
	}
	return outcomes, nil
}
