package cri

import (
	"fmt"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/fixtures"
)

// BenchmarkStats: ListContainerStats and ListPodSandboxStats with 100
// running containers (one a pod), berthd and containerd 1.6 in one run,
// calls interleaved. kubelet makes these calls every few seconds.
//
//	make bench-stats   (go test -run '^$' -bench Stats -benchtime 1x ./test/bench/cri)
func BenchmarkStats(b *testing.B) {
	const pods = 100
	targets, stop := startWithSleepers(b, "stats", pods)
	defer stop()
	ctx := b.Context()
	times := map[string][]time.Duration{}
	for i := -1; i < 20; i++ {
		for _, t := range targets {
			s := time.Now()
			list, err := t.rs.ListContainerStats(ctx, nil)
			d := time.Since(s)
			if err != nil || len(list) != pods {
				b.Fatalf("%s ListContainerStats: %d stats, %v", t.name, len(list), err)
			}
			s = time.Now()
			podStats, err := t.rs.ListPodSandboxStats(ctx, nil)
			dp := time.Since(s)
			if err != nil || len(podStats) != pods {
				b.Fatalf("%s ListPodSandboxStats: %d stats, %v", t.name, len(podStats), err)
			}
			if i >= 0 {
				times[t.name+" containers"] = append(times[t.name+" containers"], d)
				times[t.name+" pods"] = append(times[t.name+" pods"], dp)
			}
		}
	}
	fmt.Printf("\nstats of %d running containers (%d pods), 20 rounds, interleaved (median, p90)\n", pods, pods)
	for _, call := range []string{"containers", "pods"} {
		bd, cd := times["berthd "+call], times["containerd "+call]
		fmt.Printf("List%sStats: berthd %s / %s, containerd %s / %s: %.2fx\n",
			map[string]string{"containers": "Container", "pods": "PodSandbox"}[call],
			pct(bd, .5).Round(10*time.Microsecond), pct(bd, .9).Round(10*time.Microsecond),
			pct(cd, .5).Round(10*time.Microsecond), pct(cd, .9).Round(10*time.Microsecond),
			float64(pct(bd, .5))/float64(pct(cd, .5)))
	}
}

// startWithSleepers starts berthd and containerd side by side, each with
// pods running pods of one sleeping container; stop removes everything.
func startWithSleepers(b *testing.B, name string, pods int) (targets []*target, stop func()) {
	fixtures.RequireRoot(b)
	host := fixtures.Registry(b)
	ref := fixtures.PushBusybox(b, host)
	targets, stopTargets := startTargets(b, name, host)
	stop = func() {
		stopTargets()
		fixtures.RemoveCgroupOnCleanup(b, "/berth-bench")
	}
	for _, t := range targets {
		if _, err := t.is.PullImage(b.Context(), imageSpec(ref), nil, nil); err != nil {
			stop()
			b.Fatal(err)
		}
		for i := range pods {
			runSleeper(b, t, ref, fmt.Sprintf("%s-%d", name, i))
		}
	}
	return targets, stop
}
