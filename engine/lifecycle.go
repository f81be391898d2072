package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
)

// A Docker container's life: start (again, in place, once it has exited),
// stop and kill (which its restart policy respects), pause, rename,
// remove (its pod, log, network memberships and, when asked, its
// anonymous volumes), and --rm. The calls carry on when their caller goes
// away: a client that hangs up must not leave half a transition.

// ErrNotModified says a start or stop found the container already so
// (dockerd answers 304).
var ErrNotModified = fmt.Errorf("container already in that state")

// Start starts c, or starts it again in place when it has exited.
func (e *Engine) Start(ctx context.Context, c store.Container) error {
	if c.State == store.ContainerRunning {
		return ErrNotModified
	}
	ctx = context.WithoutCancel(ctx)
	e.stops.clear(c.ID)
	start := e.containers.Start
	if c.State != store.ContainerCreated {
		start = e.containers.Restart
	}
	if err := start(ctx, c.ID); err != nil {
		return err
	}
	if c.Annotations[annotationAutoRemove] == "true" {
		go e.autoRemove(c)
	}
	return nil
}

// autoRemove is `docker run --rm`: the pod goes once its container exits;
// its exit code stays for the client waiting on the removal.
func (e *Engine) autoRemove(c store.Container) {
	rec, gone, _ := e.WaitFor(context.Background(), c.ID, func(rec store.Container, gone bool) bool {
		return gone || rec.State == store.ContainerExited
	})
	if gone {
		return
	}
	removed := e.exits.put(c.ID, rec.ExitCode)
	defer removed()
	if err := e.remove(context.Background(), c); err != nil {
		e.log.Warn("docker --rm: remove", "container", c.ID, "error", err)
		return
	}
	e.removeVolumes(anonymousOf(c)) // --rm takes the anonymous volumes too, as dockerd's does
}

// Stop stops c as the user asked (its restart policy leaves it stopped):
// SIGTERM (or its stop signal), SIGKILL after timeout seconds; nil is its
// --stop-timeout, else ten seconds.
func (e *Engine) Stop(ctx context.Context, c store.Container, timeout *int) error {
	if c.State != store.ContainerRunning {
		return ErrNotModified
	}
	return e.stop(ctx, c, timeout)
}

func (e *Engine) stop(ctx context.Context, c store.Container, timeout *int) error {
	wait := 10 * time.Second
	if t := ConfigOf(c).StopTimeout; t != nil && *t >= 0 {
		wait = time.Duration(*t) * time.Second
	}
	if timeout != nil && *timeout >= 0 {
		wait = time.Duration(*timeout) * time.Second
	}
	e.stops.mark(c.ID)
	return e.containers.Stop(context.WithoutCancel(ctx), c.ID, wait)
}

// Restart is `docker restart`: stop (if running), then start again.
func (e *Engine) Restart(ctx context.Context, c store.Container, timeout *int) error {
	if c.State == store.ContainerRunning {
		if err := e.stop(ctx, c, timeout); err != nil {
			return err
		}
	}
	e.stops.clear(c.ID)
	start := e.containers.Restart
	if c.State == store.ContainerCreated {
		start = e.containers.Start
	}
	return start(context.WithoutCancel(ctx), c.ID)
}

// Kill is `docker kill`: SIGKILL unless a signal is named.
func (e *Engine) Kill(ctx context.Context, c store.Container, signal string) error {
	sig := syscall.SIGKILL
	if signal != "" {
		n, err := linux.ParseSignal(signal)
		if err != nil {
			return fmt.Errorf("invalid signal: %s: %w", signal, errdefs.ErrInvalidArgument)
		}
		sig = n
	}
	if c.State != store.ContainerRunning {
		return fmt.Errorf("Container %s is not running: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	e.stops.mark(c.ID)
	return e.containers.Kill(context.WithoutCancel(ctx), c.ID, sig)
}

// Pause and Unpause are `docker pause` and `docker unpause`.
func (e *Engine) Pause(ctx context.Context, c store.Container) error {
	return e.containers.Pause(context.WithoutCancel(ctx), c.ID)
}

func (e *Engine) Unpause(ctx context.Context, c store.Container) error {
	return e.containers.Resume(context.WithoutCancel(ctx), c.ID)
}

// Remove is `docker rm`: a running container only with force; volumes
// removes its anonymous volumes too (-v).
func (e *Engine) Remove(ctx context.Context, c store.Container, force, volumes bool) error {
	if c.State == store.ContainerRunning && !force {
		return fmt.Errorf("cannot remove container \"/%s\": container is running: stop the container before removing or force remove: %w", c.Name, errdefs.ErrFailedPrecondition)
	}
	if err := e.remove(context.WithoutCancel(ctx), c); err != nil {
		return err
	}
	if volumes {
		e.removeVolumes(anonymousOf(c))
	}
	return nil
}

// remove removes c's pod and its log, as `docker rm` does.
func (e *Engine) remove(ctx context.Context, c store.Container) error {
	e.stops.mark(c.ID) // no restart policy brings it back meanwhile
	if err := e.containers.RemovePod(ctx, c.SandboxID); err != nil {
		return err
	}
	e.stops.clear(c.ID)
	nets := e.networksOf(c, ConfigOf(c)) // the pod's removal detached it from all of them
	_ = e.saveAttachments(c.ID, nil)
	for _, n := range nets {
		e.syncHosts(n) // its peers forget it
	}
	// The pod's log directory, named when it was made: a rename since does not move it.
	if dir := filepath.Dir(c.LogPath); filepath.Dir(dir) == e.logDir {
		return os.RemoveAll(dir)
	}
	return nil
}

// Rename is `docker rename OLD NEW`.
func (e *Engine) Rename(c store.Container, name string) error {
	name = strings.TrimPrefix(name, "/")
	if !validName.MatchString(name) {
		return fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	if name == c.Name {
		return fmt.Errorf("Renaming a container with the same name as its current name: %w", errdefs.ErrInvalidArgument)
	}
	if err := e.containers.Rename(c.ID, name); err != nil {
		return err
	}
	e.events.publish("container", "rename", c.ID, map[string]string{"name": name, "oldName": "/" + c.Name, "image": c.ImageRef})
	return nil
}

// Prune is `docker container prune`: every Docker container that is not
// running, created before until (when set) and with the labels given.
// It returns the IDs removed and the bytes their writable layers held.
func (e *Engine) Prune(ctx context.Context, until time.Time, labels []string) ([]string, uint64, error) {
	all, err := e.Containers()
	if err != nil {
		return nil, 0, err
	}
	deleted := []string{}
	var reclaimed uint64
	for _, c := range all {
		if c.State == store.ContainerRunning || !until.IsZero() && c.CreatedAt.After(until) ||
			len(labels) > 0 && !Matches(c, Filters{"label": labels}) {
			continue
		}
		if u, err := e.images.Snapshots().WritableUsage(c.ID); err == nil {
			reclaimed += u.Bytes
		}
		if err := e.remove(context.WithoutCancel(ctx), c); err != nil {
			e.log.Warn("container prune", "container", c.ID, "error", err)
			continue
		}
		deleted = append(deleted, c.ID)
	}
	return deleted, reclaimed, nil
}
