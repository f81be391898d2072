package containers

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/oci/runtimecli"
	"github.com/berth-runtime/berth/shim"
	"golang.org/x/sys/unix"
)

// Recover reconciles records with the shims after a berthd start: running
// containers get their exit monitors back; exits that happened while berthd
// was away are recorded; containers whose creation was cut short are removed.
// It returns how many containers had each outcome: reattached (running,
// watched again), exited (while berthd was away), orphaned (shim gone, killed)
// and removed (creation cut short).
//
// A running container is only handed to its monitor, which learns from the
// shim's answer to its wait — at once for an exit while berthd was away, or a
// failed dial for a shim that died — what became of it, and records that:
// a hello to every shim first made the first answer wait ~0.45 ms a
// container (half a second on a node of a thousand). The monitors start when
// the caller calls watch, once it serves, and dial one shim at a time: a
// thousand shims woken at once would starve the first answers of both CPUs.
// Such exits are counted among exits, not here. Created containers are few
// and may be half-made: they are asked now.
func (s *Service) Recover(ctx context.Context) (outcomes map[string]int, watch func(), err error) {
	all, err := s.db.Containers.List()
	if err != nil {
		return nil, nil, err
	}
	outcomes = map[string]int{}
	var running []store.Container
	watch = func() {
		gate := make(chan struct{}, 1)
		for _, rec := range running {
			s.watch(rec, gate)
		}
	}
	for _, rec := range all {
		switch rec.State {
		case store.ContainerExited:
			continue
		case store.ContainerRunning:
			running = append(running, rec)
			outcomes["reattached"]++
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
				// Cut short during Create, before its shim answered: the shim
				// may be starting still, and would live on unmanaged.
				s.log.Warn("removing a container whose creation was interrupted", slog.String("container", rec.ID))
				s.killStartingShims(ctx, rec)
				_ = s.Remove(ctx, rec.ID)
				outcomes["removed"]++
				continue
			}
			s.recordExit(rec.ID, s.killOrphan(rec))
			outcomes["orphaned"]++
		}
	}
	return outcomes, watch, nil
}

// killStartingShims kills the shims started for rec's directory (found by
// their command line, "berth-shim --dir DIR") and deletes the runtime's
// container they may have made: a shim berthd spawned just before it died
// has not answered yet, and nothing else would ever stop it.
func (s *Service) killStartingShims(ctx context.Context, rec store.Container) {
	want := "\x00--dir\x00" + rec.Dir + "\x00"
	shims := linux.ProcessesMatching(func(c string) bool { return strings.HasSuffix(c, want) && strings.Contains(c, "berth-shim") })
	for _, pid := range shims {
		start, err := linux.ProcessStartTime(pid)
		if err != nil {
			continue
		}
		s.log.Warn("killing the shim of a container whose creation was interrupted", slog.String("container", rec.ID), slog.Int("pid", pid))
		_ = linux.SignalProcess(pid, start, unix.SIGKILL)
		for i := 0; i < 500 && linux.ProcessAlive(pid, start); i++ {
			time.Sleep(2 * time.Millisecond)
		}
	}
	rt := runtimecli.Runtime{Path: rec.Runtime, Root: rec.RuntimeRoot}
	_ = rt.Delete(ctx, rec.ID, true)
}
