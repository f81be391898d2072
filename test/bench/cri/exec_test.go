package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/test/fixtures"
)

// BenchmarkExec: ExecSync of `true` into a running container, interleaved
// between the daemons, beside its floor — the runtime's own `exec` of the
// same process into the same container, run directly (berth-runtime into
// berthd's, runc into containerd's) — and the CPU time (user + system of the
// daemon, its shims and everything they reaped) one ExecSync costs.
//
//	make bench-exec   (go test -run '^$' -bench Exec -benchtime 1x ./test/bench/cri)
//
// BERTH_BENCH_PROFILE=DIR also writes berthd's CPU profile and execution
// trace of the exec loop there (go tool pprof / go tool trace).
func BenchmarkExec(b *testing.B) {
	fixtures.RequireRoot(b)
	fixtures.RequireBinary(b, "containerd")
	host := fixtures.Registry(b)
	ref := fixtures.PushBusybox(b, host)
	profDir := os.Getenv("BERTH_BENCH_PROFILE")
	targets, stop := startTargetsWith(b, "exec", host, profDir != "")
	defer func() {
		stop()
		fixtures.RemoveCgroupOnCleanup(b, "/berth-bench")
	}()
	ctx := context.Background()
	cids := map[string]string{}
	for _, t := range targets {
		if _, err := t.is.PullImage(ctx, imageSpec(ref), nil, nil); err != nil {
			b.Fatalf("%s pull: %v", t.name, err)
		}
		_, cids[t.name] = runSleeper(b, t, ref, "exec-target")
	}
	floors := map[string]func() error{}
	for _, t := range targets {
		floors[t.name] = runtimeExec(b, t, cids[t.name])
	}

	const execs = 100
	times := map[string][]time.Duration{}
	cpu := map[string]time.Duration{}
	for i := -5; i < execs; i++ {
		for _, t := range targets {
			c0 := cpuOf(t)
			s := time.Now()
			if _, _, err := t.rs.ExecSync(ctx, cids[t.name], []string{"true"}, 10*time.Second); err != nil {
				b.Fatalf("%s ExecSync: %v", t.name, err)
			}
			d := time.Since(s)
			c1 := cpuOf(t)
			fs := time.Now()
			if err := floors[t.name](); err != nil {
				b.Fatalf("%s's runtime exec: %v", t.name, err)
			}
			fd := time.Since(fs)
			if i >= 0 {
				times[t.name] = append(times[t.name], d)
				times[t.name+" floor"] = append(times[t.name+" floor"], fd)
				cpu[t.name] += c1 - c0
			}
		}
	}
	fmt.Printf("\nExecSync of `true`, %d rounds, interleaved; floor: the runtime's own exec into the same container, run directly\n", execs)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "daemon\tmedian\tp90\tfloor (median)\tabove the floor\tCPU per exec\tmedian/containerd\t")
	base := pct(times["containerd"], .5)
	for _, t := range targets {
		d, f := times[t.name], times[t.name+" floor"]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t\n", t.name, ms(pct(d, .5)), ms(pct(d, .9)), ms(pct(f, .5)),
			ms(pct(d, .5)-pct(f, .5)), ms(cpu[t.name]/execs), float64(pct(d, .5))/float64(base))
	}
	tw.Flush()

	if profDir != "" {
		profileExecs(b, targets[0], cids[targets[0].name], profDir)
	}
}

func ms(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }

// runtimeExec returns a function that runs `true` in container cid through
// t's runtime binary directly, as its shim would: berth-runtime for berthd,
// runc for containerd.
func runtimeExec(b *testing.B, t *target, cid string) func() error {
	var bin, root, bundle string
	if strings.HasPrefix(t.name, "berthd") {
		bin = filepath.Join(fixtures.Binaries(b), "berth-runtime")
		root = filepath.Join(t.dir, "state", "runtime", "berth")
		bundle = filepath.Join(t.dir, "state", "containers", cid, "bundle")
	} else {
		bin = "runc"
		m, _ := filepath.Glob(filepath.Join("/run/containerd/runc/k8s.io", cid))
		if len(m) == 0 {
			b.Fatalf("%s: no runc state for %s", t.name, cid)
		}
		root = filepath.Dir(m[0])
		bundle = filepath.Join(t.dir, "state", "io.containerd.runtime.v2.task", "k8s.io", cid)
	}
	raw, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		b.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		b.Fatal(err)
	}
	p := *spec.Process
	p.Args, p.Terminal, p.OOMScoreAdj = []string{"true"}, false, nil
	pb, _ := json.Marshal(&p)
	proc := filepath.Join(b.TempDir(), "process.json")
	if err := os.WriteFile(proc, pb, 0o600); err != nil {
		b.Fatal(err)
	}
	return func() error {
		out, err := exec.Command(bin, "--root", root, "exec", "--process", proc, cid).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
}

// cpuOf sums the CPU time (user + system, its own and its reaped
// children's) of t's daemon and shims.
func cpuOf(t *target) time.Duration {
	pids := append(pidsNamed(t.shimName, t.dir), t.cmd.Process.Pid)
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime (fields 14–17)
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// profileExecs runs ExecSyncs on t for five seconds while taking berthd's
// CPU profile and execution trace from its debug socket.
func profileExecs(b *testing.B, t *target, cid, dir string) {
	wait := profile(b, t, dir, "exec", 5*time.Second)
	n := 0
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); n++ {
		if _, _, err := t.rs.ExecSync(context.Background(), cid, []string{"true"}, 10*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	wait()
	fmt.Printf("profile and trace of %d ExecSyncs in %s\n", n, dir)
}

// profile starts taking berthd's CPU profile and execution trace (from the
// debug socket startTargetsWith gave it) for d, into dir/berthd-NAME.*;
// wait returns once both are written.
func profile(b *testing.B, t *target, dir, name string, d time.Duration) (wait func()) {
	sock := filepath.Join(t.dir, "debug.sock")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	os.MkdirAll(dir, 0o755)
	done := make(chan struct{}, 2)
	for _, p := range []string{"profile", "trace"} {
		go func() {
			defer func() { done <- struct{}{} }()
			resp, err := hc.Get(fmt.Sprintf("http://berthd/debug/pprof/%s?seconds=%d", p, int(d.Seconds())))
			if err != nil {
				b.Errorf("%s: %v", p, err)
				return
			}
			defer resp.Body.Close()
			f, _ := os.Create(filepath.Join(dir, "berthd-"+name+"."+p))
			defer f.Close()
			_, _ = f.ReadFrom(resp.Body)
		}()
	}
	return func() { <-done; <-done }
}
