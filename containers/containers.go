package containers

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/berth-runtime/berth/cdi"
	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/spawn"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/nri"
	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/sandbox"
	"github.com/berth-runtime/berth/shim"
)

// Runtime is an OCI runtime binary reachable under a handler name.
type Runtime struct {
	Name string // CRI runtime handler; "" is the default
	Path string
}

// Config wires the service.
type Config struct {
	StateDir string // containers live in StateDir/containers/<id>
	ShimPath string
	// Runtimes by handler name; DefaultRuntime names the one for "".
	Runtimes       map[string]Runtime
	DefaultRuntime string
	// ShimTimeout bounds a call to a shim that has no deadline of its own.
	ShimTimeout time.Duration
	// OnExit and OnShimTimeout, when set, hear of each container exit (its
	// reason) and each shim call that got no answer in time (metrics).
	OnExit        func(reason string)
	OnShimTimeout func(call string)
	// CDI gives containers the devices their requests name; nil: CDI is off.
	CDI *cdi.Registry
	// NRI tells NRI plugins of every pod and container event and applies
	// what they ask; nil: NRI is off.
	NRI *nri.NRI
	// MountSeed is the environment that tells berth-runtime where berthd's
	// mount seed and mount view are (linux.NewMountSeed, NewMountView): its
	// containers' mount namespaces then do not copy the host's. nil, or
	// nothing (none, or not made yet), for none.
	MountSeed func() []string
	// Spawner starts the shims from a thread with few open files (nil: the
	// caller's thread).
	Spawner *spawn.Spawner
}

// Service manages containers and pods.
type Service struct {
	cfg       Config
	db        *store.DB
	images    *images.Service
	sandboxes *sandbox.Service
	oom       *oomClamp
	log       *slog.Logger

	// ctx lives as long as the service: exit monitors run under it.
	ctx      context.Context
	monitors sync.WaitGroup
	// locks serialise lifecycle calls per container.
	locks    sync.Map
	events   events
	handlers handlerCache
	cpu      cpuRates
	layers   layerUsages
	// statFiles keeps the cgroup files kubelet's stats read open.
	statFiles *linux.StatFiles
	// renameMu makes a rename's check of the name and its taking one step.
	renameMu sync.Mutex
}

// New returns the service; Recover must run before it serves calls.
func New(ctx context.Context, cfg Config, db *store.DB, img *images.Service, sb *sandbox.Service, log *slog.Logger) *Service {
	return &Service{cfg: cfg, db: db, images: img, sandboxes: sb, oom: newOOMClamp(log), log: log, ctx: ctx, events: events{log: log},
		statFiles: linux.NewStatFiles()}
}

// Wait blocks until the exit monitors have ended (after the service's context).
func (s *Service) Wait() { s.monitors.Wait() }

func (s *Service) lock(id string) func() {
	m, _ := s.locks.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (s *Service) runtime(handler string) (Runtime, error) {
	name := handler
	if name == "" {
		name = s.cfg.DefaultRuntime
	}
	rt, ok := s.cfg.Runtimes[name]
	if !ok {
		return rt, fmt.Errorf("runtime handler %q is not configured: %w", handler, errdefs.ErrInvalidArgument)
	}
	return rt, nil
}

func (s *Service) containerDir(id string) string {
	return filepath.Join(s.cfg.StateDir, "containers", id)
}

// socketPath keeps shim sockets short: sun_path holds 108 bytes, and a
// 64-digit ID under a deep --state would not fit.
func (s *Service) socketPath(id string) string {
	return filepath.Join(s.cfg.StateDir, "s", id[:32]+".sock")
}

func (s *Service) client(rec store.Container) *shim.Client {
	return &shim.Client{Socket: rec.Socket, Timeout: s.shimTimeout()}
}

func (s *Service) shimTimeout() time.Duration {
	if s.cfg.ShimTimeout > 0 {
		return s.cfg.ShimTimeout
	}
	return shim.DefaultTimeout
}

// Get returns a container's record. A container whose Create has not
// returned is not found yet (CRI: not seen while NRI plugins adjust it).
func (s *Service) Get(id string) (store.Container, error) {
	rec, err := s.db.Containers.Get(id)
	if err == nil && rec.Creating {
		return store.Container{}, fmt.Errorf("container %s is being created: %w", id, errdefs.ErrNotFound)
	}
	return rec, err
}

// List returns every container (but those being created).
func (s *Service) List() ([]store.Container, error) { return s.ListOwned("*") }

// ListOwned returns the containers of one front end's pods ("*": all).
func (s *Service) ListOwned(owner string) ([]store.Container, error) {
	return s.db.Containers.Filter(func(r store.Container) bool { return (owner == "*" || r.Owner == owner) && !r.Creating })
}

// EachOwned calls fn with each container of one front end's pods, one at a
// time (the streaming lists).
func (s *Service) EachOwned(owner string, fn func(store.Container) error) error {
	return s.db.Containers.Each(func(r store.Container) error {
		if r.Owner != owner || r.Creating {
			return nil
		}
		return fn(r)
	})
}

func (s *Service) inSandbox(id string) []store.Container {
	in, _ := s.db.Containers.Filter(func(c store.Container) bool { return c.SandboxID == id })
	return in
}

// ImageInUse reports a container (in any state) that uses the image: its
// root filesystem stands on the image's layers until it is removed.
func (s *Service) ImageInUse(imageID string) (string, bool) {
	c, ok, _ := s.db.Containers.First(func(c store.Container) bool {
		return c.ImageID == imageID || slices.Contains(c.VolumeImages, imageID)
	})
	return c.ID, ok
}

// RuntimePath is the binary of runtime handler h ("" for the default).
func (s *Service) RuntimePath(h string) (string, error) {
	rt, err := s.runtime(h)
	return rt.Path, err
}
