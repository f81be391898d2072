package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// nriPlugin is an NRI plugin of the test's own, connected to berthd's
// socket: what it does at CreateContainer is the test's to set.
type nriPlugin struct {
	stub stub.Stub
	mu   sync.Mutex
	// create answers CreateContainer (nil: no adjustment).
	create func(*api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error)
	// synced are the containers of the last Synchronize, by ID → state.
	synced map[string]api.ContainerState
	pods   []string
	// stopped are the containers a StopContainer event named.
	stopped []string
}

func (p *nriPlugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.synced, p.pods = map[string]api.ContainerState{}, nil
	for _, c := range ctrs {
		p.synced[c.GetId()] = c.GetState()
	}
	for _, s := range pods {
		p.pods = append(p.pods, s.GetId())
	}
	return nil, nil
}

func (p *nriPlugin) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.mu.Lock()
	fn := p.create
	p.mu.Unlock()
	if fn == nil {
		return nil, nil, nil
	}
	return fn(c)
}

func (p *nriPlugin) StopContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = append(p.stopped, c.GetId())
	return nil, nil
}

func (p *nriPlugin) onCreate(fn func(*api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.create = fn
}

// connectNRIPlugin connects a plugin to d and returns once berthd has
// synchronized it; it is closed at the test's end.
func connectNRIPlugin(t *testing.T, d *daemon, name string) *nriPlugin {
	t.Helper()
	p := &nriPlugin{}
	s, err := stub.New(p, stub.WithSocketPath(d.nriSocket()), stub.WithPluginName(name), stub.WithPluginIdx("10"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("NRI plugin %s: %v", name, err)
	}
	p.stub = s
	t.Cleanup(s.Stop)
	// Start returns once the plugin is configured; Synchronize follows.
	waitFor(t, "plugin "+name+" synchronized", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.synced != nil
	})
	return p
}

// TestNRI: NRI plugins through the CRI and the Docker API — a plugin's
// adjustments (env, annotation, mount, device, rlimit, memory limit, OOM
// score, hook) land in the container; a pre-registered plugin from
// plugin_path runs with its config; updates, unsolicited or asked with
// another container's creation, change a running container's cgroup; a
// container's own exit is told as StopContainer; a plugin's refusal fails
// CreateContainer and leaves nothing; a plugin that hangs costs a request
// its timeout and is dropped; after berthd restarts, a plugin that connects
// is synchronized with the pods and containers that survived.
func TestNRI(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	pluginDir, confDir, shared := t.TempDir(), t.TempDir(), t.TempDir()
	events := filepath.Join(shared, "events.log")
	// Pre-registered, as containerd lays them out: NN-name, NN-name.conf.
	if err := os.WriteFile(filepath.Join(pluginDir, "05-preregistered"), fixtures.GoBinary(t, "./test/fixtures/nriplugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "05-preregistered.conf"), []byte("env NRI_PREREGISTERED=yes\nlog "+events+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shared, "file"), []byte("mounted by a plugin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hookRan := filepath.Join(shared, "hook-ran")
	d := newDaemon(t, "")
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d.extraConfig = fmt.Sprintf("metrics_address = %q\n[nri]\nsocket_path = %q\nplugin_path = %q\nplugin_config_path = %q\nplugin_request_timeout = \"1s\"\n",
		metricsAddr, d.nriSocket(), pluginDir, confDir)
	d.start(fixtures.Binaries(t))
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := pulledBusybox(t, d)
	ctx := context.Background()
	p := connectNRIPlugin(t, d, "berth-e2e")

	logDir := filepath.Join(d.dir, "pods", "nri")
	pod := podConfig("nri", logDir)
	podID, err := d.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	create := func(name string, cmd ...string) (string, error) {
		return d.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: ref},
			Command: cmd, LogPath: name + ".log",
		}, pod)
	}
	run := func(name string, cmd ...string) string {
		t.Helper()
		cid, err := create(name, cmd...)
		if err != nil {
			t.Fatalf("CreateContainer %s: %v", name, err)
		}
		if err := d.rs.StartContainer(ctx, cid); err != nil {
			t.Fatalf("StartContainer %s: %v", name, err)
		}
		return cid
	}
	sh := func(cid, script string) string {
		t.Helper()
		out, errOut, err := d.rs.ExecSync(ctx, cid, []string{"sh", "-c", script}, 10*time.Second)
		if err != nil {
			t.Fatalf("exec %q: %v %s", script, err, errOut)
		}
		return strings.TrimSpace(string(out))
	}

	// 1. A plugin's adjustments, and the pre-registered plugin's env.
	p.onCreate(func(c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
		a := &api.ContainerAdjustment{}
		a.AddEnv("NRI_ADJUSTED", "yes")
		a.AddAnnotation("berth.test/nri", "adjusted")
		a.AddMount(&api.Mount{Source: shared, Destination: "/nri", Type: "bind", Options: []string{"rbind", "ro"}})
		a.AddDevice(&api.LinuxDevice{Path: "/dev/nri-null", Type: "c", Major: 1, Minor: 3, FileMode: api.FileMode(0o666)})
		a.AddRlimit("RLIMIT_NOFILE", 1234, 1234)
		a.SetLinuxMemoryLimit(64 << 20)
		a.SetLinuxOomScoreAdj(api.Int(500).Get())
		a.AddHooks(&api.Hooks{CreateRuntime: []*api.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hooked >> " + hookRan}}}})
		return a, nil, nil
	})
	adjusted := run("adjusted", "sleep", "600")
	checks := []struct{ script, want string }{
		{"echo $NRI_ADJUSTED $NRI_PREREGISTERED", "yes yes"},
		{"cat /nri/file", "mounted by a plugin"},
		{"test -c /dev/nri-null && echo device", "device"},
		{"ulimit -n", "1234"},
		{"cat /proc/$(pidof sleep)/oom_score_adj", "500"},
		{"cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max", "67108864"},
	}
	for _, c := range checks {
		if got := sh(adjusted, c.script); got != c.want {
			t.Errorf("adjusted container: %s: %q, want %q", c.script, got, c.want)
		}
	}
	if b, _ := os.ReadFile(hookRan); string(b) != "hooked\n" {
		t.Errorf("the plugin's createRuntime hook: %q", b)
	}
	if b, err := os.ReadFile(filepath.Join(d.state, "containers", adjusted, "bundle", "config.json")); err != nil || !strings.Contains(string(b), `"berth.test/nri":"adjusted"`) {
		t.Errorf("the plugin's annotation is not in the container's spec: %v", err)
	}

	// 2. An unsolicited update from the plugin changes the running container.
	u := &api.ContainerUpdate{ContainerId: adjusted}
	u.SetLinuxMemoryLimit(96 << 20)
	if failed, err := p.stub.UpdateContainers([]*api.ContainerUpdate{u}); err != nil || len(failed) > 0 {
		t.Fatalf("UpdateContainers: %v %v", failed, err)
	}
	if got := sh(adjusted, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"); got != "100663296" {
		t.Errorf("memory limit after the plugin's update: %s", got)
	}

	// 3. An update of another container, asked with a creation, and the
	// StopContainer event of a container that exits on its own.
	p.onCreate(nil)
	other := run("other", "sh", "-c", "sleep 1; exit 3")
	if vs := waitExited(t, d, other); vs.ExitCode != 3 {
		t.Errorf("container that exits on its own: %v %d", vs.State, vs.ExitCode)
	}
	waitFor(t, "plugins told the container exited on its own", func() bool { return slices.Contains(p.stoppedIDs(), other) })
	p.onCreate(func(*api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
		u := &api.ContainerUpdate{ContainerId: adjusted}
		u.SetLinuxMemoryLimit(80 << 20)
		return nil, []*api.ContainerUpdate{u}, nil
	})
	run("updates-another", "sleep", "600")
	if got := sh(adjusted, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"); got != "83886080" {
		t.Errorf("memory limit after another container's creation asked it: %s", got)
	}

	// 4. A refusal fails CreateContainer, naming NRI, and leaves nothing.
	p.onCreate(func(*api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
		return nil, nil, errors.New("no room on this node")
	})
	before := containerDirs(t, d)
	if _, err := create("refused", "true"); err == nil || !strings.Contains(err.Error(), "NRI") || !strings.Contains(err.Error(), "no room") {
		t.Errorf("CreateContainer refused by a plugin: %v", err)
	}
	list, _ := d.rs.ListContainers(ctx, nil)
	for _, c := range list {
		if c.Metadata.Name == "refused" {
			t.Errorf("a refused container is listed: %s", c.Id)
		}
	}
	if after := containerDirs(t, d); !slices.Equal(before, after) {
		t.Errorf("a refused container left state: %v → %v", before, after)
	}

	// 5. A plugin that hangs costs the request its timeout, then is dropped;
	// the container is made without it.
	p.onCreate(func(*api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
		time.Sleep(time.Minute)
		return nil, nil, nil
	})
	hctx, hcancel := context.WithTimeout(ctx, 30*time.Second)
	start := time.Now()
	hung, err := d.rs.CreateContainer(hctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "past-a-hung-plugin"}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: []string{"sleep", "600"}, LogPath: "hung.log",
	}, pod)
	hcancel()
	if err != nil {
		t.Fatalf("CreateContainer past a hung plugin: %v", err)
	}
	t.Logf("CreateContainer past a plugin that hangs: %s (plugin_request_timeout 1s)", time.Since(start).Round(time.Millisecond))
	if err := d.rs.StartContainer(ctx, hung); err != nil {
		t.Fatal(err)
	}

	// Prometheus sees the plugins and what they were asked.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`berth_nri_plugin_requests_total{event="CreateContainer",plugin="10-berth-e2e",result="ok"}`,
		`berth_nri_plugin_requests_total{event="CreateContainer",plugin="10-berth-e2e",result="error"}`,
		`berth_nri_plugin_request_duration_seconds_count{event="RunPodSandbox"}`,
		"berth_nri_plugins 1", // the hung plugin was dropped; the pre-registered one stays
	} {
		if !strings.Contains(string(scrape), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// 6. Docker containers meet the same plugins.
	if out := mustDocker(t, d, "run", "--rm", "--network", "none", ref, "sh", "-c", "echo $NRI_PREREGISTERED"); strings.TrimSpace(out) != "yes" {
		t.Errorf("docker run through NRI: %q", out)
	}

	// 7. After berthd restarts, a plugin that connects is synchronized with
	// what survived; the pre-registered plugin runs again.
	d.stop()
	d.start(fixtures.Binaries(t))
	q := connectNRIPlugin(t, d, "after-restart")
	q.mu.Lock()
	synced, pods := q.synced, q.pods
	q.mu.Unlock()
	for _, id := range []string{adjusted, hung} {
		if synced[id] != api.ContainerState_CONTAINER_RUNNING {
			t.Errorf("after a restart, Synchronize has container %s as %v, want running (all: %v)", id, synced[id], synced)
		}
	}
	if synced[other] != api.ContainerState_CONTAINER_STOPPED {
		t.Errorf("after a restart, Synchronize has the exited container as %v", synced[other])
	}
	if !slices.Contains(pods, podID) {
		t.Errorf("after a restart, Synchronize lacks pod %s: %v", podID, pods)
	}
	if err := d.rs.StopPodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	if err := d.rs.RemovePodSandbox(ctx, podID); err != nil {
		t.Fatal(err)
	}
	// The pre-registered plugin heard the pod's life in order.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(events)
		var order []string
		for _, l := range strings.Split(string(b), "\n") {
			if ev, id, _ := strings.Cut(l, " "); id == podID {
				order = append(order, ev)
			}
		}
		want := []string{"RunPodSandbox", "SyncPod", "StopPodSandbox", "RemovePodSandbox"}
		if slices.Equal(order, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the pre-registered plugin's events for the pod: %v, want %v", order, want)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *nriPlugin) stoppedIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.stopped)
}

// containerDirs lists the daemon's container state directories.
func containerDirs(t *testing.T, d *daemon) []string {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(d.state, "containers"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// waitFor polls cond for up to 10 s, failing the test naming what.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting: %s", what)
			return
		}
	}
}
