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
	for _, n := range steps {
		var startT []time.Duration
		for ; running < n; running++ {
			s := time.Now()
			runHostSleeper(b, t, ref, fmt.Sprintf("scale-%d", running))
			startT = append(startT, time.Since(s))
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
}

// runHostSleeper runs `sleep` in a pod of its own on the host network.
func runHostSleeper(b *testing.B, t *target, ref, name string) {
	ctx := context.Background()
	pod := podConfig(t, name)
	pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
	}
	podID, err := t.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		b.Fatalf("RunPodSandbox %s: %v", name, err)
	}
	cid, err := t.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: []string{"sleep", "3600"}, LogPath: "sleep.log",
	}, pod)
	if err != nil {
		b.Fatalf("CreateContainer %s: %v", name, err)
	}
	if err := t.rs.StartContainer(ctx, cid); err != nil {
		b.Fatalf("StartContainer %s: %v", name, err)
	}
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
