// Package daemon is berthd's composition root: it builds the store, the
// services and the front ends (the CRI gRPC server and its streaming server),
// and shuts them down in order. Only cmd/berthd imports it; it is the one
// package allowed to import every other, so wiring lives here and nowhere else.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/berth-runtime/berth/builder"
	"github.com/berth-runtime/berth/builder/buildkit"
	"github.com/berth-runtime/berth/cdi"
	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/cri"
	"github.com/berth-runtime/berth/dockerapi"
	"github.com/berth-runtime/berth/engine"
	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/internal/config"
	"github.com/berth-runtime/berth/internal/spawn"
	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/internal/version"
	"github.com/berth-runtime/berth/metrics"
	"github.com/berth-runtime/berth/sandbox"
)

// reconcileDelay is how long after it starts serving berthd waits before
// the reconciling it does behind serving (pod networks' checks).
const reconcileDelay = time.Second

// Run serves until ctx ends, then shuts down: in-flight calls get a few
// seconds to finish; containers keep running under their shims.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	spawner := spawn.New() // first, while few files are open: its thread's table starts as a copy
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return fmt.Errorf("root %s: %w", cfg.Root, err)
	}
	if err := os.MkdirAll(cfg.State, 0o711); err != nil {
		return fmt.Errorf("state %s: %w", cfg.State, err)
	}
	shimPath, err := findBinary(cfg.ShimPath, "berth-shim")
	if err != nil {
		return err
	}
	runtimes, err := resolveRuntimes(cfg, log)
	if err != nil {
		return err
	}
	ln, err := listen(cfg.CRISocket)
	if err != nil {
		return err
	}
	defer os.Remove(cfg.CRISocket)
	defer ln.Close()

	db, err := store.Open(filepath.Join(cfg.Root, "meta.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	img, err := images.New(db, cfg.Root, log)
	if err != nil {
		return err
	}
	img.SetRegistryConfigDir(cfg.RegistryConfigDir)
	img.SetLayerDiskFraction(cfg.MaxLayerDiskFraction)
	creds := map[string]images.Auth{}
	for host, a := range cfg.RegistryAuths {
		creds[host] = images.Auth(a)
	}
	img.SetCredentials(creds)
	if err := img.SetPinned(cfg.PinnedImages); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	lazyBin, lazyOff := lazyServer(cfg, log)
	img.SetLazyPulls(lazyBin)
	img.ReviveLazyLayers(ctx)
	pauseBin, err := findBinary("", "berth-runtime")
	if err != nil {
		return err
	}
	network := cni.New(cni.Config{
		ConfDir: cfg.CNIConfDir, BinDirs: cfg.CNIBinDirs, CacheDir: filepath.Join(cfg.Root, "cni"),
		DefaultDir: filepath.Join(cfg.State, "cni"), DefaultSubnet: cfg.CNIDefaultSubnet, Spawner: spawner,
	}, log)
	sb := sandbox.New(db, cfg.State, pauseBin, network, log)
	var ctr *containers.Service
	m := metrics.New(podCounts(sb), containerCounts(func() *containers.Service { return ctr }), liveShims(func() *containers.Service { return ctr }))
	img.SetHooks(images.Hooks{Pulled: m.Pulled, Freed: m.Freed})

	recoveryStart := time.Now()
	if err := sb.Recover(ctx); err != nil {
		log.Warn("sandbox recovery left something behind", slog.Any("error", err))
	}
	var devices *cdi.Registry
	if len(cfg.CDISpecDirs) > 0 {
		if devices, err = cdi.New(cfg.CDISpecDirs, log); err != nil {
			return err
		}
	}
	plugins, err := newNRI(cfg.NRI, m, log)
	if err != nil {
		return err
	}
	mountSeed, closeSeed := newMountSeed(cfg.State, log)
	defer closeSeed()
	svcCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	ctr = containers.New(svcCtx, containers.Config{
		StateDir: cfg.State, ShimPath: shimPath, Runtimes: runtimes, DefaultRuntime: cfg.DefaultRuntime,
		ShimTimeout: time.Duration(cfg.ShimTimeout), OnExit: m.Exited, OnShimTimeout: m.ShimTimedOut,
		CDI: devices, NRI: plugins, MountSeed: mountSeed, Spawner: spawner,
	}, db, img, sb, log)
	defer func() { stopServices(); ctr.Wait() }()
	outcomes, watchRecovered, err := ctr.Recover(ctx)
	if err != nil {
		return fmt.Errorf("recover containers: %w", err)
	}
	m.Recovered(outcomes, time.Since(recoveryStart))
	log.Info("recovered", slog.Any("containers", outcomes), slog.Duration("took", time.Since(recoveryStart)))
	// After recovery: plugins are synchronized with what survived.
	if err := plugins.Start(ctr.NRIDomain()); err != nil {
		return err
	}
	defer plugins.Stop()

	st, err := cri.NewStreaming(cfg.StreamingAddress, ctr, sb, log)
	if err != nil {
		return err
	}
	defer st.Close()
	go func() {
		if err := st.Serve(); err != nil {
			log.Error("streaming server", slog.Any("error", err))
		}
	}()
	if cfg.MetricsAddress != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", m.Handler())
		stop, err := serveHTTP(cfg.MetricsAddress, mux, "metrics", log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if cfg.DebugAddress != "" {
		stop, err := serveHTTP(cfg.DebugAddress, pprofMux(), "pprof", log)
		if err != nil {
			return err
		}
		defer stop()
	}
	g := grpc.NewServer(grpc.ChainUnaryInterceptor(cri.LogInterceptor(log), m.UnaryInterceptor()), grpc.MaxRecvMsgSize(16<<20))
	front := cri.New(ctr, sb, img, st, log, version.Version)
	checks := &cachedChecks{cfg: cfg}
	front.SetStatusInfo(func(ctx context.Context) map[string]string {
		c, _ := json.Marshal(cfg)
		k, _ := json.Marshal(checks.get(ctx))
		l, _ := json.Marshal(img.LazyStatus(lazyOff))
		return map[string]string{"config": string(c), "checks": string(k), "lazyPulls": string(l)}
	})
	front.Register(g)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(ln) }()
	if cfg.DockerSocket != "" {
		eng := engine.New(ctr, sb, img, filepath.Join(cfg.Root, "docker"), log)
		eng.SetInit(pauseBin) // berth-runtime is docker-init when called so
		docker := dockerapi.New(eng, version.Version, log)
		docker.SetBuilder(builder.New(ctr, img, filepath.Join(cfg.Root, "build"), log))
		if cfg.BuildKit {
			rt, err := ctr.RuntimePath(cfg.BuildKitRuntime)
			if err != nil {
				return fmt.Errorf("buildkit_runtime: %w", err)
			}
			bk := buildkit.New(buildkit.Config{Root: filepath.Join(cfg.Root, "buildkit"), RuntimePath: rt, CgroupParent: "berth-build",
				IdleStop: time.Duration(cfg.BuildKitIdleStop)}, ctr, img, log)
			defer bk.Close()
			bk.Sweep(svcCtx)
			docker.SetBuildKit(bk)
		}
		go ctr.RemoveOwnedPods(svcCtx, builder.Owner) // RUN steps a crash cut short
		stop, err := serveDocker(cfg, docker, log)
		if err != nil {
			return err
		}
		defer stop()
		go eng.Run(svcCtx) // restart policies, health checks, events
	}
	log.Info("berthd serving", slog.String("cri", cfg.CRISocket), slog.String("root", cfg.Root),
		slog.String("state", cfg.State), slog.String("version", version.Version))
	watchRecovered()
	// Behind serving, and a moment after it: plugin runs cost tens of ms a
	// pod, and even the walk of a thousand pods' directories would compete
	// with kubelet's first calls for the CPUs.
	go func() {
		select {
		case <-time.After(reconcileDelay):
			sb.CheckNetworks(svcCtx)
		case <-svcCtx.Done():
		}
	}()
	// systemd (Type=notify) learns berthd is ready only now, after recovery.
	if _, err := sdnotify.SdNotify(false, sdnotify.SdNotifyReady); err != nil {
		log.Warn("sd_notify READY", slog.Any("error", err))
	}

	select {
	case err := <-errc:
		return fmt.Errorf("CRI server: %w", err)
	case <-ctx.Done():
	}
	log.Info("berthd shutting down")
	_, _ = sdnotify.SdNotify(false, sdnotify.SdNotifyStopping)
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		g.Stop()
	}
	return nil
}

// serveHTTP serves h on addr (host:port, or a unix socket path) until stop.
func serveHTTP(addr string, h http.Handler, what string, log *slog.Logger) (stop func(), err error) {
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
		_ = os.Remove(addr)
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("%s address %s: %w", what, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info(what+" serving", slog.String("address", ln.Addr().String()))
	return func() { _ = srv.Close() }, nil
}

// pprofMux is Go's pprof, for finding where berthd spends its time or holds goroutines.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// podCounts, containerCounts and liveShims are what the metrics read from
// the store at each scrape.
func podCounts(sb *sandbox.Service) metrics.Counts {
	return func() map[string]int {
		out := map[string]int{string(store.SandboxReady): 0, string(store.SandboxNotReady): 0}
		if all, err := sb.List(); err == nil {
			for _, p := range all {
				out[string(p.State)]++
			}
		}
		return out
	}
}

func containerCounts(ctr func() *containers.Service) metrics.Counts {
	return func() map[string]int {
		out := map[string]int{}
		for _, st := range []store.ContainerState{store.ContainerCreated, store.ContainerRunning, store.ContainerExited, store.ContainerUnknown} {
			out[string(st)] = 0
		}
		if c := ctr(); c != nil {
			if all, err := c.List(); err == nil {
				for _, r := range all {
					out[string(r.State)]++
				}
			}
		}
		return out
	}
}

func liveShims(ctr func() *containers.Service) func() int {
	count := containerCounts(ctr)
	return func() int {
		c := count()
		return c[string(store.ContainerCreated)] + c[string(store.ContainerRunning)] + c[string(store.ContainerUnknown)]
	}
}

// listen opens the socket, replacing a stale one but never one a live daemon answers on.
func listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another daemon is serving on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// Made 0660 from the start (the umask at bind time decides the mode):
	// a chmod after the bind would leave a moment in which anyone could
	// connect. berthd has started nothing else yet that creates files.
	old := unix.Umask(0o117)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// serveDocker serves the Docker Engine API on cfg.DockerSocket: 0660, and
// the docker group's when the node has one, as dockerd's socket is.
func serveDocker(cfg config.Config, h http.Handler, log *slog.Logger) (func(), error) {
	ln, err := listen(cfg.DockerSocket)
	if err != nil {
		return nil, fmt.Errorf("docker socket: %w", err)
	}
	if g, err := user.LookupGroup("docker"); err == nil {
		if gid, err := strconv.Atoi(g.Gid); err == nil {
			if err := os.Chown(cfg.DockerSocket, 0, gid); err != nil {
				log.Warn("docker socket: group docker", slog.Any("error", err))
			}
		}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("docker API", slog.Any("error", err))
		}
	}()
	log.Info("docker API serving", slog.String("socket", cfg.DockerSocket))
	return func() {
		_ = srv.Close()
		_ = os.Remove(cfg.DockerSocket)
	}, nil
}
