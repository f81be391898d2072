package nri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	clog "github.com/containerd/log"
	"github.com/containerd/nri/pkg/adaptation"
	api "github.com/containerd/nri/pkg/api"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/store"
)

// Config says where plugins are found and how long they may take.
type Config struct {
	// Socket is where external plugins connect; "" accepts none (only the
	// pre-registered plugins run).
	Socket string
	// PluginPath holds pre-registered plugins (NN-name executables) that
	// berthd starts itself; PluginConfigPath their NN-name.conf or name.conf.
	PluginPath, PluginConfigPath string
	// RegistrationTimeout bounds a plugin's registration and synchronization,
	// RequestTimeout each event it is sent.
	RegistrationTimeout, RequestTimeout time.Duration
	// RuntimeName and RuntimeVersion are what plugins are told they run under.
	RuntimeName, RuntimeVersion string
	// Observer, when set, hears of each plugin's requests (metrics).
	Observer Observer
}

// Observer hears what plugins do: each event sent and its result, the time
// a plugin took, and how many plugins are connected.
type Observer interface {
	NRIPluginCall(plugin, event string, err error)
	NRIPluginLatency(plugin, event string, took time.Duration)
	NRIPlugins(n int)
}

// observed is what the NRI library reports to: the count of plugins, kept
// for Active, and the Observer, when there is one.
type observed struct {
	o       Observer
	plugins *atomic.Int64
}

func (o observed) RecordPluginInvocation(plugin, op string, err error) {
	if o.o != nil {
		o.o.NRIPluginCall(plugin, op, err)
	}
}

func (o observed) RecordPluginLatency(plugin, op string, d time.Duration) {
	if o.o != nil {
		o.o.NRIPluginLatency(plugin, op, d)
	}
}

func (o observed) RecordPluginAdjustments(string, string, *api.ContainerAdjustment, int, int) {}

func (o observed) UpdatePluginCount(n int) {
	o.plugins.Store(int64(n))
	if o.o != nil {
		o.o.NRIPlugins(n)
	}
}

// Domain is what NRI needs from the containers service.
type Domain interface {
	// List returns every pod and container, for a plugin that connects.
	List(ctx context.Context) ([]store.Sandbox, []Container, error)
	// Update applies a plugin's resources to a container.
	Update(ctx context.Context, id string, r *specs.LinuxResources) error
	// Evict stops a container a plugin evicts.
	Evict(ctx context.Context, id, reason string) error
}

// NRI relays Berth's pod and container events to NRI plugins. A nil *NRI is
// NRI turned off: every call is then a no-op.
type NRI struct {
	a   *adaptation.Adaptation
	d   Domain
	log *slog.Logger
	// pluginPath is where pre-registered plugins are; synced is set by
	// the first synchronization, Start's of them.
	pluginPath string
	synced     atomic.Bool
	// plugins counts the plugins connected and synchronized.
	plugins atomic.Int64
}

// Active reports whether any plugin is connected: the events that cost a
// read of the container's spec are not made for nobody. A plugin being
// synchronized is not counted yet; the NRI library sends it no event until
// it is either.
func (n *NRI) Active() bool { return n != nil && n.plugins.Load() > 0 }

// New prepares NRI; Start serves it once the domain can answer.
func New(cfg Config, log *slog.Logger) (*NRI, error) {
	// The library keeps its timeouts process-wide; one NRI runs in berthd.
	if cfg.RegistrationTimeout > 0 {
		adaptation.SetPluginRegistrationTimeout(cfg.RegistrationTimeout)
	}
	if cfg.RequestTimeout > 0 {
		adaptation.SetPluginRequestTimeout(cfg.RequestTimeout)
	}
	// The library logs through logrus; sent on to slog's default logger.
	clog.UseSlog()
	n := &NRI{log: log, pluginPath: cfg.PluginPath}
	opts := []adaptation.Option{
		adaptation.WithPluginPath(cfg.PluginPath),
		adaptation.WithPluginConfigPath(cfg.PluginConfigPath),
	}
	opts = append(opts, adaptation.WithMetrics(observed{o: cfg.Observer, plugins: &n.plugins}))
	socket := cfg.Socket
	if socket != "" {
		if err := claimSocket(socket); err != nil {
			// Pods must not wait on a runtime's optional part: berthd serves
			// on, with the pre-registered plugins only, and says so.
			log.Error("NRI plugins cannot connect: "+err.Error(), slog.String("socket", socket))
			socket = ""
		}
	}
	if socket == "" {
		opts = append(opts, adaptation.WithDisabledExternalConnections())
	} else {
		opts = append(opts, adaptation.WithSocketPath(socket))
	}
	a, err := adaptation.New(cfg.RuntimeName, cfg.RuntimeVersion, n.sync, n.update, opts...)
	if err != nil {
		return nil, fmt.Errorf("nri: %w", err)
	}
	n.a = a
	return n, nil
}

// claimSocket refuses a socket another runtime serves (containerd and CRI-O
// default to the same path) and removes a stale one, which the library
// would fail to listen on.
func claimSocket(path string) error {
	if _, err := os.Stat(path); err != nil {
		return os.MkdirAll(filepath.Dir(path), 0o755)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("socket %s is served by another process (another runtime?): set [nri] socket_path in berthd's config to another path, or enable = false", path)
	}
	return os.Remove(path)
}

// Start serves plugins: the pre-registered ones start, external ones may
// connect; each is synchronized with d's pods and containers first.
func (n *NRI) Start(d Domain) error {
	if n == nil {
		return nil
	}
	n.d = d
	if err := n.a.Start(); err != nil {
		return fmt.Errorf("nri: start plugins: %w", err)
	}
	return nil
}

// Stop ends the plugins berthd started and closes the socket.
func (n *NRI) Stop() {
	if n != nil {
		n.a.Stop()
	}
}

func (n *NRI) sync(ctx context.Context, cb adaptation.SyncCB) error {
	if !n.synced.Swap(true) && len(Plugins(n.pluginPath)) == 0 {
		// The first is Start's, of the pre-registered plugins (before any
		// may connect), made even when there is none: a thousand
		// containers' specs would be read for nobody (~90 ms before
		// berthd's first answer).
		_, err := cb(ctx, nil, nil)
		return err
	}
	pods, ctrs, err := n.d.List(ctx)
	if err != nil {
		return fmt.Errorf("list pods and containers: %w", err)
	}
	ps := make([]*api.PodSandbox, len(pods))
	for i, p := range pods {
		ps[i] = podOf(p)
	}
	cs := make([]*api.Container, len(ctrs))
	for i, c := range ctrs {
		cs[i] = containerOf(c)
	}
	updates, err := cb(ctx, ps, cs)
	if err != nil {
		return err
	}
	_, err = n.update(ctx, updates)
	return err
}

// update applies updates plugins asked for (unsolicited, or along with an
// event's answer); it returns the ones that failed.
func (n *NRI) update(ctx context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
	var failed []*api.ContainerUpdate
	var errs []error
	for _, u := range updates {
		err := n.d.Update(ctx, u.GetContainerId(), u.GetLinux().GetResources().ToOCI())
		if err == nil {
			continue
		}
		failed = append(failed, u)
		if !u.GetIgnoreFailure() {
			errs = append(errs, fmt.Errorf("update container %s: %w", u.GetContainerId(), err))
		}
	}
	if len(failed) > 0 {
		n.log.Warn("NRI plugins' container updates failed", slog.String("containers", describe(failed)), slog.Any("error", errors.Join(errs...)))
	}
	return failed, errors.Join(errs...)
}

func (n *NRI) evict(ctx context.Context, ev []*api.ContainerEviction) {
	for _, e := range ev {
		n.log.Info("NRI plugin evicts a container", slog.String("container", e.GetContainerId()), slog.String("reason", e.GetReason()))
		if err := n.d.Evict(ctx, e.GetContainerId(), e.GetReason()); err != nil {
			n.log.Warn("evict container", slog.String("container", e.GetContainerId()), slog.Any("error", err))
		}
	}
}

// BlockSync keeps plugins from being synchronized until the returned func
// is called: a container being created is then either in a new plugin's
// synchronization or told to it as an event, never lost between the two.
func (n *NRI) BlockSync() func() {
	if n == nil {
		return func() {}
	}
	return n.a.BlockPluginSync().Unblock
}

// Plugins names the pre-registered plugins in dir: its executable files,
// as the NRI library discovers them.
func Plugins(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			names = append(names, e.Name())
		}
	}
	return names
}
