package buildkit

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/defaults"
	"github.com/moby/buildkit/cache/remotecache"
	inlineremotecache "github.com/moby/buildkit/cache/remotecache/inline"
	localremotecache "github.com/moby/buildkit/cache/remotecache/local"
	registryremotecache "github.com/moby/buildkit/cache/remotecache/registry"
	"github.com/moby/buildkit/control"
	"github.com/moby/buildkit/executor"
	"github.com/moby/buildkit/frontend"
	dockerfile "github.com/moby/buildkit/frontend/dockerfile/builder"
	"github.com/moby/buildkit/frontend/gateway"
	"github.com/moby/buildkit/frontend/gateway/forwarder"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/bboltcachestorage"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/db/boltutil"
	"github.com/moby/buildkit/util/grpcerrors"
	"github.com/moby/buildkit/util/resolver"
	bkworker "github.com/moby/buildkit/worker"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/images"
)

// Config is where BuildKit keeps its state and what it runs steps with.
type Config struct {
	// Root holds BuildKit's cache, snapshots, content and history.
	Root string
	// RuntimePath is the OCI runtime RUN steps run under.
	RuntimePath string
	// CgroupParent is the cgroup the steps' cgroups are made in.
	CgroupParent string
	// IdleStop stops BuildKit once nothing used it for this long; 0 never.
	IdleStop time.Duration
}

// Service is BuildKit in berthd. It starts on the first build: a node that
// never builds pays nothing for it, not at start nor in memory.
type Service struct {
	cfg        Config
	containers *containers.Service
	images     *images.Service
	log        *slog.Logger

	mu      sync.Mutex
	running *running
	// users are the calls using running now (a build, a /grpc connection,
	// a session, df); idleGen names the idle timer armed when they ended.
	users   int
	idle    *time.Timer
	idleGen int
	builds  builds
}

// running is a started BuildKit.
type running struct {
	controller *control.Controller
	sessions   *session.Manager
	grpc       *grpc.Server
	worker     *worker
}

// New returns BuildKit over Berth's containers and images; nothing starts yet.
func New(cfg Config, c *containers.Service, img *images.Service, log *slog.Logger) *Service {
	return &Service{cfg: cfg, containers: c, images: img, log: log}
}

// use starts BuildKit if it is not running (an error is returned and tried
// again next time) and keeps it running until release is called.
func (s *Service) use(ctx context.Context) (r *running, release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		if err := s.forgetUsage(); err != nil {
			return nil, nil, fmt.Errorf("start BuildKit in %s: %w", s.cfg.Root, err)
		}
		r, err := s.newRunning(context.WithoutCancel(ctx))
		if err != nil {
			return nil, nil, fmt.Errorf("start BuildKit in %s: %w", s.cfg.Root, err)
		}
		s.running = r
		s.log.Info("BuildKit started", slog.String("root", s.cfg.Root), slog.String("runtime", s.cfg.RuntimePath))
	}
	s.users++
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
	var once sync.Once
	return s.running, func() { once.Do(s.release) }, nil
}

// release ends a use; the last one arms the idle stop.
func (s *Service) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users--
	if s.users > 0 || s.cfg.IdleStop <= 0 || s.running == nil {
		return
	}
	s.idleGen++
	gen := s.idleGen
	s.idle = time.AfterFunc(s.cfg.IdleStop, func() { s.stopIdle(gen) })
}

// stopIdle stops BuildKit when the timer gen is the last armed and nothing
// used BuildKit since: its worker, caches and databases go, and the memory
// they held is given back to the system at once.
func (s *Service) stopIdle(gen int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.idleGen || s.users > 0 || s.running == nil {
		return
	}
	s.idle = nil
	if err := s.closeRunning(); err != nil {
		s.log.Warn("BuildKit's idle stop", "error", err)
	}
	debug.FreeOSMemory()
	s.log.Info("BuildKit stopped: idle", slog.Duration("for", s.cfg.IdleStop))
}

func (s *Service) newRunning(ctx context.Context) (_ *running, err error) {
	sm, err := session.NewManager()
	if err != nil {
		return nil, err
	}
	w, err := s.newWorker(ctx)
	if err != nil {
		return nil, err
	}
	// A start that fails closes its databases: the next one would wait on
	// their locks.
	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range append(closers, w.Close) {
				_ = c()
			}
		}
	}()
	wc := &bkworker.Controller{}
	if err := wc.Add(w); err != nil {
		return nil, err
	}
	gw, err := gateway.NewGatewayFrontend(wc.Infos(), nil)
	if err != nil {
		return nil, err
	}
	frontends := map[string]frontend.Frontend{
		"dockerfile.v0": localFirst{forwarder.NewGatewayForwarder(wc.Infos(), dockerfile.Build)},
		"gateway.v0":    gw,
	}
	cacheStore, err := bboltcachestorage.NewStore(filepath.Join(s.cfg.Root, "cache.db"))
	if err != nil {
		return nil, err
	}
	closers = append(closers, cacheStore.Close)
	history, err := boltutil.SafeOpen(filepath.Join(s.cfg.Root, "history.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return nil, err
	}
	closers = append(closers, history.Close)
	hosts := resolver.NewRegistryConfig(nil)
	ctl, err := control.NewController(control.Opt{
		SessionManager:   sm,
		WorkerController: wc,
		Frontends:        frontends,
		CacheManager:     solver.NewCacheManager(ctx, "local", cacheStore, bkworker.NewCacheResultStorage(wc)),
		ResolveCacheExporterFuncs: map[string]remotecache.ResolveCacheExporterFunc{
			"registry": registryremotecache.ResolveCacheExporterFunc(sm, hosts),
			"local":    localremotecache.ResolveCacheExporterFunc(sm),
			"inline":   inlineremotecache.ResolveCacheExporterFunc(),
		},
		ResolveCacheImporterFuncs: map[string]remotecache.ResolveCacheImporterFunc{
			"registry": registryremotecache.ResolveCacheImporterFunc(sm, w.ContentStore(), hosts),
			"local":    localremotecache.ResolveCacheImporterFunc(sm),
		},
		HistoryDB:      history,
		CacheStore:     cacheStore,
		LeaseManager:   w.LeaseManager(),
		ContentStore:   w.ContentStore(),
		GarbageCollect: w.GarbageCollect,
	})
	if err != nil {
		return nil, err
	}
	// The interceptors carry errors' details (a failed step's Dockerfile
	// lines, its exit code) to the client as gRPC status details.
	g := grpc.NewServer(grpc.UnaryInterceptor(grpcerrors.UnaryServerInterceptor), grpc.StreamInterceptor(grpcerrors.StreamServerInterceptor),
		grpc.MaxRecvMsgSize(defaults.DefaultMaxRecvMsgSize), grpc.MaxSendMsgSize(defaults.DefaultMaxSendMsgSize))
	ctl.Register(g)
	return &running{controller: ctl, sessions: sm, grpc: g, worker: w}, nil
}

// ServeConn serves BuildKit's control API (gRPC over HTTP/2 without TLS) on
// conn, a connection a client upgraded to h2c at /grpc, until it closes.
func (s *Service) ServeConn(ctx context.Context, conn net.Conn) error {
	r, release, err := s.use(ctx)
	if err != nil {
		conn.Close()
		return err
	}
	defer release()
	(&http2.Server{}).ServeConn(conn, &http2.ServeConnOpts{Context: ctx, Handler: r.grpc})
	return nil
}

// HandleSession takes over the client's session connection (/session):
// BuildKit calls back through it for the context, secrets, SSH and outputs.
func (s *Service) HandleSession(ctx context.Context, w http.ResponseWriter, req *http.Request) error {
	r, release, err := s.use(ctx)
	if err != nil {
		return err
	}
	defer release()
	return r.sessions.HandleHTTPRequest(ctx, w, req)
}

// Close stops BuildKit if it started.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
	s.idleGen++
	return s.closeRunning()
}

// closeRunning stops the running BuildKit; s.mu is held.
func (s *Service) closeRunning() error {
	if s.running == nil {
		return nil
	}
	s.keepUsage(s.running)
	s.running.grpc.Stop()
	err := s.running.controller.Close()
	s.running = nil
	return err
}

// localFirst makes a Dockerfile's FROM take an image Berth has before asking
// its registry, as dockerd does (BuildKit's default asks the registry first);
// --pull asks for the registry and is kept.
type localFirst struct{ frontend.Frontend }

func (f localFirst) Solve(ctx context.Context, llb frontend.FrontendLLBBridge, exec executor.Executor, opt map[string]string, inputs map[string]*pb.Definition, sid string, sm *session.Manager) (*frontend.Result, error) {
	if opt["image-resolve-mode"] == "" {
		o := make(map[string]string, len(opt)+1)
		for k, v := range opt {
			o[k] = v
		}
		o["image-resolve-mode"] = pb.AttrImageResolveModePreferLocal
		opt = o
	}
	return f.Frontend.Solve(ctx, llb, exec, opt, inputs, sid, sm)
}
