package nri

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/containerd/nri/pkg/api"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/internal/store"
)

func TestPodAndContainerAsPluginsSeeThem(t *testing.T) {
	sb := store.Sandbox{
		ID: "pod1", Name: "web", UID: "u1", Namespace: "default", RuntimeHandler: "crun", CgroupParent: "/kubepods/pod1",
		Namespaces: map[string]string{"net": "/run/berth/pod1/ns/net", "ipc": "/run/berth/pod1/ns/ipc"},
		IP:         "10.88.0.5", AdditionalIPs: []string{"fd00::5"}, Labels: map[string]string{"app": "web"},
	}
	p := podOf(sb)
	if p.Id != "pod1" || p.Name != "web" || p.Uid != "u1" || p.Namespace != "default" || p.RuntimeHandler != "crun" ||
		p.Linux.CgroupParent != "/kubepods/pod1" || !slices.Equal(p.Ips, []string{"10.88.0.5", "fd00::5"}) || p.Labels["app"] != "web" {
		t.Errorf("pod: %v", p)
	}
	if len(p.Linux.Namespaces) != 2 || p.Linux.Namespaces[0].Type != "network" || p.Linux.Namespaces[1].Type != "ipc" {
		t.Errorf("pod namespaces: %v", p.Linux.Namespaces)
	}
	adj := 100
	c := containerOf(Container{
		Rec: store.Container{ID: "c1", SandboxID: "pod1", Name: "app", State: store.ContainerRunning, Pid: 42, CreatedAt: time.Unix(5, 0)},
		Spec: &specs.Spec{
			Process: &specs.Process{Args: []string{"sleep", "1"}, Env: []string{"A=1"}, OOMScoreAdj: &adj},
			Linux:   &specs.Linux{CgroupsPath: "/kubepods/pod1/c1", Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20))}}},
			Mounts:  []specs.Mount{{Destination: "/data", Source: "/srv", Type: "bind"}},
		},
		CDIDevices: []string{"vendor.com/gpu=0"},
	})
	if c.Id != "c1" || c.PodSandboxId != "pod1" || c.Name != "app" || c.State != api.ContainerState_CONTAINER_RUNNING || c.Pid != 42 ||
		!slices.Equal(c.Args, []string{"sleep", "1"}) || c.Linux.CgroupsPath != "/kubepods/pod1/c1" ||
		c.Linux.Resources.Memory.Limit.GetValue() != 64<<20 || c.Linux.OomScoreAdj.GetValue() != 100 ||
		len(c.Mounts) != 1 || c.CDIDevices[0].Name != "vendor.com/gpu=0" || c.CreatedAt != 5e9 {
		t.Errorf("container: %v", c)
	}
	// A container whose spec is unreadable is still told (by its record).
	if c := containerOf(Container{Rec: store.Container{ID: "c2", State: store.ContainerExited}}); c.State != api.ContainerState_CONTAINER_STOPPED || c.Linux != nil {
		t.Errorf("container without a spec: %v", c)
	}
}

func TestAdjust(t *testing.T) {
	spec := &specs.Spec{Process: &specs.Process{Env: []string{"KEEP=1", "DROP=1"}}, Linux: &specs.Linux{}}
	a := &api.ContainerAdjustment{}
	a.AddEnv("ADDED", "yes")
	a.RemoveEnv("DROP")
	a.AddMount(&api.Mount{Source: "/srv", Destination: "/data", Type: "bind", Options: []string{"rbind", "ro"}})
	a.AddRlimit("RLIMIT_NOFILE", 100, 50)
	a.SetLinuxCPUShares(512)
	a.SetLinuxCgroupsPath("/elsewhere/c1")
	if err := Adjust(spec, a, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(spec.Process.Env, "ADDED=yes") || slices.Contains(spec.Process.Env, "DROP=1") || !slices.Contains(spec.Process.Env, "KEEP=1") {
		t.Errorf("env: %v", spec.Process.Env)
	}
	if len(spec.Mounts) != 1 || spec.Mounts[0].Destination != "/data" {
		t.Errorf("mounts: %v", spec.Mounts)
	}
	if len(spec.Process.Rlimits) != 1 || spec.Process.Rlimits[0].Hard != 100 || spec.Process.Rlimits[0].Soft != 50 {
		t.Errorf("rlimits: %v", spec.Process.Rlimits)
	}
	if spec.Linux.CgroupsPath != "/elsewhere/c1" || *spec.Linux.Resources.CPU.Shares != 512 {
		t.Errorf("linux: %+v", spec.Linux)
	}
	// CDI devices asked with CDI off are refused, naming them.
	cdi := &api.ContainerAdjustment{}
	cdi.AddCDIDevice(&api.CDIDevice{Name: "vendor.com/gpu=0"})
	if err := Adjust(&specs.Spec{}, cdi, nil); err == nil || !strings.Contains(err.Error(), "vendor.com/gpu=0") {
		t.Errorf("CDI device with CDI off: %v", err)
	}
	var got []string
	if err := Adjust(&specs.Spec{}, cdi, func(_ *specs.Spec, d []string) error { got = d; return nil }); err != nil || !slices.Equal(got, []string{"vendor.com/gpu=0"}) {
		t.Errorf("CDI device injected: %v %v", got, err)
	}
}

// fakeDomain records what NRI asked of the containers service.
type fakeDomain struct {
	updated, evicted []string
	fail             map[string]bool
	lists            int
}

func (f *fakeDomain) List(context.Context) ([]store.Sandbox, []Container, error) {
	f.lists++
	return []store.Sandbox{{ID: "p"}}, []Container{{Rec: store.Container{ID: "c"}}}, nil
}

func (f *fakeDomain) Update(_ context.Context, id string, r *specs.LinuxResources) error {
	if f.fail[id] {
		return errors.New("no such container")
	}
	f.updated = append(f.updated, id)
	return nil
}

func (f *fakeDomain) Evict(_ context.Context, id, _ string) error {
	f.evicted = append(f.evicted, id)
	return nil
}

func TestUpdatesAndEvictions(t *testing.T) {
	d := &fakeDomain{fail: map[string]bool{"gone": true, "gone-ok": true}}
	n := &NRI{d: d, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	mk := func(id string, ignore bool) *api.ContainerUpdate {
		u := &api.ContainerUpdate{ContainerId: id, IgnoreFailure: ignore}
		u.SetLinuxMemoryLimit(1 << 20)
		return u
	}
	failed, err := n.update(context.Background(), []*api.ContainerUpdate{mk("a", false), mk("gone-ok", true), mk("b", false)})
	if err != nil || len(failed) != 1 || failed[0].ContainerId != "gone-ok" || !slices.Equal(d.updated, []string{"a", "b"}) {
		t.Errorf("updates: failed %v, err %v, updated %v", failed, err, d.updated)
	}
	if _, err := n.update(context.Background(), []*api.ContainerUpdate{mk("gone", false)}); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("a failed update that may not be ignored: %v", err)
	}
	n.evict(context.Background(), []*api.ContainerEviction{{ContainerId: "c9", Reason: "out of CPUs"}})
	if !slices.Equal(d.evicted, []string{"c9"}) {
		t.Errorf("evicted: %v", d.evicted)
	}
	// NRI off: every call is a no-op.
	var off *NRI
	if adj, err := off.CreateContainer(context.Background(), store.Sandbox{}, Container{}); adj != nil || err != nil {
		t.Errorf("nil NRI CreateContainer: %v %v", adj, err)
	}
	off.BlockSync()()
}

func ptr[T any](v T) *T { return &v }

// TestStartSyncWithoutPlugins: Start's synchronization of pre-registered
// plugins lists nothing when there is none (a restart of a node of a
// thousand containers read every spec for nobody, ~90 ms before berthd's
// first answer); a plugin that connects later is given everything.
func TestStartSyncWithoutPlugins(t *testing.T) {
	d := &fakeDomain{}
	n := &NRI{d: d, log: slog.New(slog.NewTextHandler(io.Discard, nil)), pluginPath: t.TempDir()}
	var got []int
	cb := func(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
		got = append(got, len(pods)+len(ctrs))
		return nil, nil
	}
	for range 2 {
		if err := n.sync(context.Background(), cb); err != nil {
			t.Fatal(err)
		}
	}
	if d.lists != 1 || !slices.Equal(got, []int{0, 2}) {
		t.Errorf("lists %d, synchronized %v: want the first (Start's, no plugin) empty and unlisted", d.lists, got)
	}
}

// TestActive: NRI is active while the library counts a plugin connected;
// NRI off (nil) never is.
func TestActive(t *testing.T) {
	n := &NRI{}
	o := observed{plugins: &n.plugins}
	if n.Active() {
		t.Error("active with no plugin")
	}
	o.UpdatePluginCount(2)
	if !n.Active() {
		t.Error("not active with two plugins")
	}
	o.UpdatePluginCount(0)
	var off *NRI
	if n.Active() || off.Active() {
		t.Error("active after the last plugin went, or with NRI off")
	}
}
