package cri

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/fixtures"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BenchmarkMetrics: what serving metrics costs. Pod start with metrics on
// and off, two berthds in one run, interleaved; then the time of a scrape
// with 100 running containers.
//
//	go test -run '^$' -bench Metrics -benchtime 1x ./test/bench/cri
func BenchmarkMetrics(b *testing.B) {
	fixtures.RequireRoot(b)
	host := fixtures.Registry(b)
	ref := fixtures.PushBusybox(b, host)
	base, err := os.MkdirTemp("", "berth-bench-metrics-")
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	on := startBerthdNamed(b, base, "metrics-on", "--metrics-address", addr)
	off := startBerthdNamed(b, base, "metrics-off", "--metrics-address", "")
	targets := []*target{on, off}
	defer func() {
		for _, t := range targets {
			stopTarget(t)
		}
		os.RemoveAll(base)
		fixtures.RemoveCgroupOnCleanup(b, "/berth-bench")
	}()
	ctx := b.Context()
	for _, t := range targets {
		if _, err := t.is.PullImage(ctx, imageSpec(ref), nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	const rounds = 20
	times := map[string][]time.Duration{}
	for i := -1; i < rounds; i++ {
		for _, t := range targets {
			d := runEchoPod(b, t, ref, fmt.Sprintf("m-%d", i+1))
			if i >= 0 {
				times[t.name] = append(times[t.name], d)
			}
		}
	}
	fmt.Printf("\npod start with metrics on and off, %d rounds, interleaved\n", rounds)
	fmt.Printf("metrics on %s, off %s (median): on/off %.3f\n", pct(times[on.name], .5).Round(100*time.Microsecond),
		pct(times[off.name], .5).Round(100*time.Microsecond), float64(pct(times[on.name], .5))/float64(pct(times[off.name], .5)))

	for i := range 100 {
		runSleeper(b, on, ref, fmt.Sprintf("scrape-%d", i))
	}
	var scrapes []time.Duration
	var size int
	for range 21 {
		s := time.Now()
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		scrapes = append(scrapes, time.Since(s))
		size = int(n)
	}
	fmt.Printf("scrape of /metrics with 100 running containers: median %s, p90 %s (%d bytes)\n",
		pct(scrapes[1:], .5).Round(10*time.Microsecond), pct(scrapes[1:], .9).Round(10*time.Microsecond), size)
}

func imageSpec(ref string) *runtimeapi.ImageSpec { return &runtimeapi.ImageSpec{Image: ref} }
