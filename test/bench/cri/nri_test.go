package cri

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// BenchmarkCRINRI is NRI's cost: RunPodSandbox and CreateContainer on three
// berthds side by side, interleaved — NRI off (nri-off), NRI on with no
// plugin (nri-on), and NRI with one no-op plugin (nri-1-noop-plugin) (test/fixtures/nriplugin, subscribed to every
// event, answering each with nothing) connected to its socket.
func BenchmarkCRINRI(b *testing.B) {
	fixtures.RequireRoot(b)
	host := fixtures.Registry(b)
	ref := fixtures.PushBusybox(b, host)
	base, err := os.MkdirTemp("", "berth-bench-nri-")
	if err != nil {
		b.Fatal(err)
	}
	plugin := filepath.Join(base, "nriplugin")
	if err := os.WriteFile(plugin, fixtures.GoBinary(b, "./test/fixtures/nriplugin"), 0o755); err != nil {
		b.Fatal(err)
	}
	targets := []*target{
		startBerthdNamed(b, base, "nri-off", "--metrics-address", "", "--nri=false"),
		startBerthdNamed(b, base, "nri-on", "--metrics-address", ""),
		startBerthdNamed(b, base, "nri-1-noop-plugin", "--metrics-address", ""),
	}
	events := filepath.Join(base, "plugin-events")
	pl := exec.Command(plugin, "-socket", filepath.Join(targets[2].dir, "nri.sock"), "-name", "noop", "-idx", "50", "-config", "log "+events)
	if err := pl.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = pl.Process.Kill()
		_ = pl.Wait()
		for _, t := range targets {
			stopTarget(t)
		}
		os.RemoveAll(base)
		fixtures.RemoveCgroupOnCleanup(b, "/berth-bench")
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got, _ := os.ReadFile(events); strings.Contains(string(got), "Synchronize") {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the no-op NRI plugin did not connect in 20s")
		}
	}
	ctx := context.Background()
	for _, t := range targets {
		if _, err := t.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
			b.Fatalf("%s pull: %v", t.name, err)
		}
	}
	const rounds = 30
	runp, create := map[string][]time.Duration{}, map[string][]time.Duration{}
	for i := -1; i < rounds; i++ {
		for _, t := range targets {
			pod := podConfig(t, fmt.Sprintf("nri-%d", i+1))
			s := time.Now()
			podID, err := t.rs.RunPodSandbox(ctx, pod, "")
			if err != nil {
				b.Fatalf("%s RunPodSandbox: %v", t.name, err)
			}
			r := time.Since(s)
			s = time.Now()
			_, err = t.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: ref},
				Command: []string{"true"}, LogPath: "c.log",
			}, pod)
			if err != nil {
				b.Fatalf("%s CreateContainer: %v", t.name, err)
			}
			c := time.Since(s)
			if i >= 0 {
				runp[t.name], create[t.name] = append(runp[t.name], r), append(create[t.name], c)
			}
			_ = t.rs.StopPodSandbox(ctx, podID)
			_ = t.rs.RemovePodSandbox(ctx, podID)
		}
	}
	for _, m := range []struct {
		title string
		times map[string][]time.Duration
	}{{"RunPodSandbox", runp}, {"CreateContainer", create}} {
		fmt.Printf("\nNRI's cost: %s, %d rounds, interleaved\n", m.title, rounds)
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "berthd\tmedian\tp90\tmedian − nri-off\tmedian/nri-off\t")
		off := pct(m.times["nri-off"], .5)
		for _, t := range targets {
			d := m.times[t.name]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t\n", t.name, pct(d, .5).Round(10*time.Microsecond), pct(d, .9).Round(10*time.Microsecond),
				(pct(d, .5) - off).Round(10*time.Microsecond), float64(pct(d, .5))/float64(off))
		}
		tw.Flush()
	}
	if got, _ := os.ReadFile(events); !strings.Contains(string(got), "CreateContainer") {
		b.Errorf("the no-op plugin heard no CreateContainer: its events:\n%s", got)
	}
}
