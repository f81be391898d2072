package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestLoad: 50 CRI clients, each on its own connection, create a pod with a
// container, exec in it and remove it, over and over for a bounded time,
// against a berthd built with -race (make test-load builds it into
// $BERTH_LOAD_BIN). No data race is reported, every call returns within
// its deadline (no deadlock), and afterwards nothing is left: no pod,
// container, mount, process, veth or state directory.
func TestLoad(t *testing.T) {
	bin := os.Getenv("BERTH_LOAD_BIN")
	if bin == "" {
		t.Skip("BERTH_LOAD_BIN (a berthd built with -race beside berth-shim and berth-runtime) is not set: `make test-load` sets it")
	}
	const clients = 50
	duration := 20 * time.Second
	if v, err := time.ParseDuration(os.Getenv("BERTH_LOAD_TIME")); err == nil {
		duration = v
	}
	d := startDaemonFrom(t, bin, "")
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := pulledBusybox(t, d)
	veths := berthVeths()

	ctx := context.Background()
	stopAt := time.Now().Add(duration)
	var cycles, execs atomic.Int64
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs, err := remote.NewRemoteRuntimeService(ctx, "unix://"+d.socket, 2*time.Minute, noop.NewTracerProvider(), false)
			if err != nil {
				errs <- err
				return
			}
			for i := 0; time.Now().Before(stopAt); i++ {
				if err := loadCycle(rs, d, ref, fmt.Sprintf("load-%d-%d", c, i), &execs); err != nil {
					errs <- fmt.Errorf("client %d, cycle %d: %w", c, i, err)
					return
				}
				cycles.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d clients, %s: %d pod cycles, %d execs", clients, duration, cycles.Load(), execs.Load())
	if pods, err := d.rs.ListPodSandbox(ctx, nil); err != nil || len(pods) > 0 {
		t.Errorf("pods left: %d (%v)", len(pods), err)
	}
	if cs, err := d.rs.ListContainers(ctx, nil); err != nil || len(cs) > 0 {
		t.Errorf("containers left: %d (%v)", len(cs), err)
	}
	if after := berthVeths(); after > veths {
		t.Errorf("veths on berth0: %d before, %d after", veths, after)
	}
	if err := d.stop(); err != nil {
		t.Errorf("berthd (race build) exited: %v", err)
	}
	if log, _ := os.ReadFile(d.logFile); strings.Contains(string(log), "DATA RACE") {
		t.Errorf("the race detector reported:\n%s", log)
	}
	assertNothingLeft(t, d)
}

// loadCycle is one client's pod: run, create, start, exec, stop, remove;
// each call under a deadline that a deadlock would miss.
func loadCycle(rs interface {
	RunPodSandbox(context.Context, *runtimeapi.PodSandboxConfig, string) (string, error)
	CreateContainer(context.Context, string, *runtimeapi.ContainerConfig, *runtimeapi.PodSandboxConfig) (string, error)
	StartContainer(context.Context, string) error
	ExecSync(context.Context, string, []string, time.Duration) ([]byte, []byte, error)
	StopPodSandbox(context.Context, string) error
	RemovePodSandbox(context.Context, string) error
}, d *daemon, ref, name string, execs *atomic.Int64) error {
	call := func(what string, f func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := f(ctx)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%s %s did not return within a minute (deadlock?): %w", what, name, err)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", what, name, err)
		}
		return nil
	}
	pod := podConfig(name, filepath.Join(d.dir, "pods", name))
	pod.Linux.CgroupParent = "/berth-e2e/" + name
	var podID, cid string
	if err := call("RunPodSandbox", func(ctx context.Context) (err error) { podID, err = rs.RunPodSandbox(ctx, pod, ""); return }); err != nil {
		return err
	}
	err := call("CreateContainer", func(ctx context.Context) (err error) {
		cid, err = rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: ref},
			Command: []string{"sleep", "600"}, LogPath: "c.log",
		}, pod)
		return
	})
	if err == nil {
		err = call("StartContainer", func(ctx context.Context) error { return rs.StartContainer(ctx, cid) })
	}
	if err == nil {
		err = call("ExecSync", func(ctx context.Context) error {
			out, _, err := rs.ExecSync(ctx, cid, []string{"echo", name}, 30*time.Second)
			if err == nil && strings.TrimSpace(string(out)) != name {
				err = fmt.Errorf("output %q", out)
			}
			return err
		})
		execs.Add(1)
	}
	for _, step := range []struct {
		what string
		f    func(context.Context) error
	}{{"StopPodSandbox", func(ctx context.Context) error { return rs.StopPodSandbox(ctx, podID) }},
		{"RemovePodSandbox", func(ctx context.Context) error { return rs.RemovePodSandbox(ctx, podID) }}} {
		if serr := call(step.what, step.f); err == nil {
			err = serr
		}
	}
	return err
}

// berthVeths counts the veths attached to the default bridge.
func berthVeths() int {
	out, _ := exec.Command("ip", "-o", "link", "show", "master", "berth0").Output()
	return strings.Count(string(out), "\n")
}
