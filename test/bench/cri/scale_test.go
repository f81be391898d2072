package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// BenchmarkScale: how berthd's restart, ListContainers, ListPodSandboxStats
// and RSS grow with the containers it holds, from 10 to 1,000 running (one
// pod each, host network: the pod network's cost is the CNI plugins', per
// pod, and make bench-cri times it). Restart is timed from the start of the
// new process to its first answered Version, and to the first ListContainers
// that shows every container running (after a SIGKILL; 3 rounds, median).
//
//	make bench-scale   (BERTH_BENCH_SCALE="10 100 1000" to choose the steps,
//	                    BERTH_BENCH_BERTHD_ARGS="--nri=false" to add berthd flags,
//	                    BERTH_BENCH_PROFILE=DIR for berthd's profile of ListPodSandboxStats at the last step)
func BenchmarkScale(b *testing.B) {
	fixtures.RequireRoot(b)
	steps := []int{10, 100, 250, 500, 1000}
	if s := os.Getenv("BERTH_BENCH_SCALE"); s != "" {
		steps = steps[:0]
		for _, f := range strings.Fields(s) {
			n, err := strconv.Atoi(f)
			if err != nil || n <= 0 {
				b.Fatalf("BERTH_BENCH_SCALE: %q is not a count", f)
			}
			steps = append(steps, n)
		}
	}
	host := fixtures.Registry(b)
	ref := fixtures.PushBusybox(b, host)
	base, err := os.MkdirTemp("", "berth-bench-scale-")
	if err != nil {
		b.Fatal(err)
	}
	// BERTH_BENCH_BERTHD_ARGS adds berthd flags (e.g. --nri=false), to weigh a feature's cost.
	args := append([]string{"--metrics-address", ""}, strings.Fields(os.Getenv("BERTH_BENCH_BERTHD_ARGS"))...)
	profDir := os.Getenv("BERTH_BENCH_PROFILE")
	if profDir != "" {
		args = append(args, "--debug-address", filepath.Join(base, "berthd", "debug.sock"))
	}
	t := startBerthd(b, base, args...)
	defer func() {
		stopTarget(t)
		os.RemoveAll(base)
		fixtures.RemoveCgroupOnCleanup(b, "/berth-bench")
	}()
	ctx := context.Background()
	if _, err := t.is.PullImage(ctx, imageSpec(ref), nil, nil); err != nil {
		b.Fatal(err)
	}

	fmt.Printf("\nberthd holding N running containers (one pod each, host network)\n")
	row := "%6s  %22s  %25s  %17s  %28s  %15s  %32s  %11s\n"
	fmt.Printf(row, "N", "create+start (median)", "create+start at N (last 20)", "restart: Version", "restart: all listed running", "ListContainers", "ListPodSandboxStats (first)", "berthd RSS")
	running := 0
	// BERTH_BENCH_SCALE_TIMES names a file for every pod's create+start, one a line (ms), to see the climb's spread.
	var times *os.File
	if p := os.Getenv("BERTH_BENCH_SCALE_TIMES"); p != "" {
		if times, err = os.Create(p); err != nil {
			b.Fatal(err)
		}
		defer times.Close()
	}
	for _, n := range steps {
		var startT []time.Duration
		for ; running < n; running++ {
			s := time.Now()
			steps := runHostSleeper(b, t, ref, fmt.Sprintf("scale-%d", running))
			startT = append(startT, time.Since(s))
			if times != nil {
				fmt.Fprintf(times, "%d %.2f %.2f %.2f %.2f\n", running, ms1(startT[len(startT)-1]), ms1(steps[0]), ms1(steps[1]), ms1(steps[2]))
			}
		}
		var first, all []time.Duration
		for range 3 {
			v, l := restartAndList(b, t, n)
			first, all = append(first, v), append(all, l)
		}
		var list, stats []time.Duration
		for range 10 {
			s := time.Now()
			if _, err := t.rs.ListContainers(ctx, nil); err != nil {
				b.Fatal(err)
			}
			list = append(list, time.Since(s))
		}
		// The first call after the restarts opens the cgroups' stat files
		// (cgroups_statfiles.go); the median is kubelet's every few seconds.
		for range 5 {
			s := time.Now()
			if _, err := t.rs.ListPodSandboxStats(ctx, nil); err != nil {
				b.Fatal(err)
			}
			stats = append(stats, time.Since(s))
		}
		if profDir != "" && n == steps[len(steps)-1] {
			// ListPodSandboxStats in a loop, as kubelet's every 10 s would be, long after the restart.
			wait := profile(b, t, profDir, fmt.Sprintf("stats-%d", n), 4*time.Second)
			for end := time.Now().Add(4 * time.Second); time.Now().Before(end); {
				s := time.Now()
				if _, err := t.rs.ListPodSandboxStats(ctx, nil); err != nil {
					b.Fatal(err)
				}
				stats = append(stats, time.Since(s))
			}
			wait()
			fmt.Printf("profile and trace of ListPodSandboxStats at %d in %s\n", n, profDir)
		}
		rss, _ := memKB(t.cmd.Process.Pid)
		create, atN := "-", "-"
		if len(startT) > 0 {
			create = ms(pct(startT, .5))
			atN = ms(pct(startT[max(0, len(startT)-20):], .5))
		}
		fmt.Printf(row, strconv.Itoa(n), create, atN, ms(pct(first, .5)), ms(pct(all, .5)), ms(pct(list, .5)), ms(pct(stats, .5))+" ("+ms(stats[0])+")", mb(rss))
	}
	if alt := os.Getenv("BERTH_BENCH_SCALE_ALT"); alt != "" {
		alternate(b, t, ref, alt, &running)
	}
}

// alternate weighs another build's berthd (BERTH_BENCH_SCALE_ALT names the
// directory holding its berthd, berth-shim and berth-runtime) against this
// one's on the same node, in one run: runs of the two differ by more than
// a change's gain on this VM. Four rounds of each restart berthd on the
// same state and time 20 more pods' create+start.
func alternate(b *testing.B, t *target, ref, alt string, running *int) {
	this := t.cmd.Path
	got := map[string][]time.Duration{}
	for round := range 8 {
		bin := this
		if round%2 == 0 {
			bin = filepath.Join(alt, "berthd")
		}
		t.cmd.Path = bin
		restartTarget(b, t)
		time.Sleep(2 * time.Second) // the mount seed and view are made behind the first answer
		for range 20 {
			s := time.Now()
			runHostSleeper(b, t, ref, fmt.Sprintf("scale-%d", *running))
			*running++
			got[bin] = append(got[bin], time.Since(s))
		}
	}
	t.cmd.Path = this
	restartTarget(b, t)
	fmt.Printf("\ncreate+start beyond %d, alternating builds (4 × 20 pods each)\n", *running-160)
	for _, bin := range []string{this, filepath.Join(alt, "berthd")} {
		fmt.Printf("  %-50s  median %s  p90 %s\n", bin, ms(pct(got[bin], .5)), ms(pct(got[bin], .9)))
	}
}

func ms1(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// runHostSleeper runs `sleep` in a pod of its own on the host network and
// returns how long RunPodSandbox, CreateContainer and StartContainer took.
func runHostSleeper(b *testing.B, t *target, ref, name string) (steps [3]time.Duration) {
	ctx := context.Background()
	pod := podConfig(t, name)
	pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
	}
	start := time.Now()
	podID, err := t.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		b.Fatalf("RunPodSandbox %s: %v", name, err)
	}
	steps[0] = time.Since(start)
	start = time.Now()
	cid, err := t.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: []string{"sleep", "3600"}, LogPath: "sleep.log",
	}, pod)
	if err != nil {
		b.Fatalf("CreateContainer %s: %v", name, err)
	}
	steps[1] = time.Since(start)
	start = time.Now()
	if err := t.rs.StartContainer(ctx, cid); err != nil {
		b.Fatalf("StartContainer %s: %v", name, err)
	}
	steps[2] = time.Since(start)
	return steps
}

// restartAndList restarts t (restartTarget) and then times, from the same
// start, the first ListContainers that lists n containers, all running.
func restartAndList(b *testing.B, t *target, n int) (version, listed time.Duration) {
	version = restartTarget(b, t)
	s := time.Now().Add(-version)
	for deadline := s.Add(60 * time.Second); ; {
		list, err := t.rs.ListContainers(context.Background(), nil)
		if err == nil && len(list) == n {
			ok := true
			for _, c := range list {
				ok = ok && c.State == runtimeapi.ContainerState_CONTAINER_RUNNING
			}
			if ok {
				return version, time.Since(s)
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("a minute after the restart: %d of %d containers listed (%v)", len(list), n, err)
		}
		time.Sleep(time.Millisecond)
	}
}
