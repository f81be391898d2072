package containers

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci"
	"github.com/berth-runtime/berth/shim"
)

// execGrace is how much longer than an ExecSync's timeout berthd waits for
// the shim's own answer.
const execGrace = 500 * time.Millisecond

// ExecResult is what ExecSync's process did.
type ExecResult = shim.ExecResult

// ExecSync runs cmd in a running container and returns its exit code and
// output; at the timeout (0: none) the process is killed and TimedOut set.
func (s *Service) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*ExecResult, error) {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return nil, err
	}
	if rec.State != store.ContainerRunning {
		return nil, fmt.Errorf("container %s is %s, not running: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	if len(cmd) == 0 {
		return nil, fmt.Errorf("exec in %s: empty command: %w", id, errdefs.ErrInvalidArgument)
	}
	if timeout > 0 {
		// The CRI's timeout holds whatever the shim does: a shim that answers
		// kills the process at the timeout and says so; one that does not is
		// given up on a moment later.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout+execGrace)
		defer cancel()
	}
	res, err := s.client(rec).Exec(ctx, cmd, timeout)
	if err != nil {
		return nil, s.shimError(rec, "exec in", err)
	}
	return res, nil
}

// StreamOpts are an interactive exec's streams; Size a terminal's size;
// ExecUser the user an exec runs as.
type (
	StreamOpts = shim.StreamOpts
	Size       = shim.Size
	ExecUser   = shim.ExecUser
)

// ExecStream runs a process in a running container with its streams wired
// to o's, and returns its exit code.
func (s *Service) ExecStream(ctx context.Context, id string, o StreamOpts) (int32, error) {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return 0, err
	}
	if rec.State != store.ContainerRunning {
		return 0, fmt.Errorf("container %s is %s, not running: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	return s.client(rec).ExecStream(ctx, o)
}

// Attach streams a running container's output to o's writers and o.Stdin to
// its stdin (if it was created with one) until it exits; it returns the exit code.
func (s *Service) Attach(ctx context.Context, id string, o StreamOpts) (int32, error) {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return 0, err
	}
	// A created container's shim already serves attach: a client attached
	// before the start (docker run -it) sees the first byte of output.
	if rec.State != store.ContainerRunning && rec.State != store.ContainerCreated {
		return 0, fmt.Errorf("container %s is %s, not running: %w", id, rec.State, errdefs.ErrFailedPrecondition)
	}
	return s.client(rec).Attach(ctx, o)
}

// ExecUser resolves user ("name", "uid", "name:group", "uid:gid") against
// the container's own /etc/passwd and /etc/group, for an exec's --user.
func (s *Service) ExecUser(id, user string) (*ExecUser, error) {
	rec, err := s.db.Containers.Get(id)
	if err != nil {
		return nil, err
	}
	u, err := oci.ResolveUser(filepath.Join(rec.Dir, "bundle", "rootfs"), user)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %v: %w", id, err, errdefs.ErrInvalidArgument)
	}
	return &ExecUser{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}, nil
}
