// Package docker benchmarks berthd's Docker Engine API against dockerd
// (Debian's docker.io 20.10), both driven by the same docker CLI in one run,
// interleaved: `docker run --rm --network none busybox true`, `docker exec
// c true`, classic and BuildKit builds (buildx's docker driver), and the
// daemon's memory with 10 running containers and during the builds.
//
//	make bench-docker   (go test -run '^$' -bench Docker -benchtime 1x ./test/bench/docker)
package docker

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/fixtures"
)

type daemon struct {
	name, sock string
	cmd        *exec.Cmd
}

func (d *daemon) docker(b *testing.B, args ...string) string { return d.dockerEnv(b, nil, args...) }

func (d *daemon) dockerEnv(b *testing.B, env []string, args ...string) string {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+b.TempDir()), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%s: docker %s: %v\n%s", d.name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func start(b *testing.B, d *daemon, dir string) {
	logf, _ := os.Create(filepath.Join(dir, d.name+".log"))
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", d.name, err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("unix", d.sock); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not listen on %s", d.name, d.sock)
		}
	}
}

func BenchmarkDocker(b *testing.B) {
	fixtures.RequireRoot(b)
	fixtures.RequireBinary(b, "docker")
	fixtures.RequireBinary(b, "dockerd")
	host := fixtures.Registry(b)
	ref := fixtures.PushBusybox(b, host)
	base, err := os.MkdirTemp("", "berth-bench-docker-")
	if err != nil {
		b.Fatal(err)
	}
	_ = os.Chmod(base, 0o711)
	bd := &daemon{name: "berthd", sock: filepath.Join(base, "berth-docker.sock")}
	bd.cmd = exec.Command(filepath.Join(fixtures.Binaries(b), "berthd"), "--cri-socket", filepath.Join(base, "berth.sock"),
		"--docker-socket", bd.sock, "--root", filepath.Join(base, "berth-root"), "--state", filepath.Join(base, "berth-state"),
		"--metrics-address", "", "--log-level", "warn", "--cni-conf-dir", filepath.Join(base, "net.d"))
	dd := &daemon{name: "dockerd", sock: filepath.Join(base, "dockerd.sock")}
	dd.cmd = exec.Command("dockerd", "-H", "unix://"+dd.sock, "--data-root", filepath.Join(base, "docker-data"),
		"--exec-root", filepath.Join(base, "docker-exec"), "--pidfile", filepath.Join(base, "dockerd.pid"),
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--oom-score-adjust=0")
	daemons := []*daemon{bd, dd}
	defer func() {
		for _, d := range daemons {
			out, _ := exec.Command("docker", "-H", "unix://"+d.sock, "ps", "-aq").Output()
			if ids := strings.Fields(string(out)); len(ids) > 0 {
				_ = exec.Command("docker", append([]string{"-H", "unix://" + d.sock, "rm", "-f"}, ids...)...).Run()
			}
			if d.cmd.Process != nil {
				_ = d.cmd.Process.Signal(syscall.SIGTERM)
				done := make(chan struct{})
				go func() { _ = d.cmd.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(20 * time.Second):
					_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
				}
			}
		}
		_ = exec.Command("umount", "-R", base).Run()
		os.RemoveAll(base)
		fixtures.RemoveCgroupOnCleanup(b, "/docker")
	}()
	for _, d := range daemons {
		start(b, d, base)
		d.docker(b, "pull", ref)
	}

	const rounds = 10
	run := map[string][]time.Duration{}
	// berth, the CLI, against the same berthd: the CLI's own cost beside the docker CLI's.
	berth := func(args ...string) {
		cmd := exec.Command(filepath.Join(fixtures.Binaries(b), "berth"), args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+bd.sock)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for i := -1; i < rounds; i++ {
		for _, d := range daemons {
			s := time.Now()
			d.docker(b, "run", "--rm", "--network", "none", ref, "true")
			if i >= 0 {
				run[d.name] = append(run[d.name], time.Since(s))
			}
		}
		s := time.Now()
		berth("run", "--rm", "--network", "none", ref, "true")
		if i >= 0 {
			run["berth"] = append(run["berth"], time.Since(s))
		}
	}
	// Published ports the daemon picks, on a user network (dockerd runs
	// without its default bridge here): Berth's portmap and IPv6 shim
	// forward against dockerd's docker-proxy processes.
	for _, d := range daemons {
		d.docker(b, "network", "create", "benchnet")
	}
	published := map[string][]time.Duration{}
	for i := -1; i < rounds; i++ {
		for _, d := range daemons {
			s := time.Now()
			d.docker(b, "run", "-d", "--name", "pub", "--network", "benchnet", "-p", "8080", "-p", "9090/udp", ref, "sleep", "60")
			if i >= 0 {
				published[d.name] = append(published[d.name], time.Since(s))
			}
			d.docker(b, "rm", "-f", "pub")
		}
	}
	for _, d := range daemons {
		d.docker(b, "network", "rm", "benchnet")
	}
	lists := map[string][]time.Duration{}
	for i := -1; i < rounds; i++ {
		for name, f := range map[string]func(){"docker ps": func() { bd.docker(b, "ps", "-a") }, "berth ps": func() { berth("ps", "-a") },
			"docker images": func() { bd.docker(b, "images") }, "berth images": func() { berth("images") }} {
			s := time.Now()
			f()
			if i >= 0 {
				lists[name] = append(lists[name], time.Since(s))
			}
		}
	}
	// A 5-step Dockerfile built by each daemon's classic builder, without
	// the cache and again with it.
	ctxDir := b.TempDir()
	_ = os.WriteFile(filepath.Join(ctxDir, "f"), []byte("file\n"), 0o644)
	_ = os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+ref+"\nENV A=1\nCOPY f /f\nRUN echo hi > /g\nWORKDIR /w\nCMD [\"true\"]\n"), 0o644)
	builds := map[string][]time.Duration{}
	for i := -1; i < 5; i++ {
		for _, d := range daemons {
			for _, mode := range []string{"uncached", "cached"} {
				args := []string{"build", "--network", "none", "-q", "-t", "bench:1", ctxDir}
				if mode == "uncached" {
					args = append(args, "--no-cache")
				}
				s := time.Now()
				d.dockerEnv(b, []string{"DOCKER_BUILDKIT=0"}, args...)
				if i >= 0 {
					builds[d.name+" "+mode] = append(builds[d.name+" "+mode], time.Since(s))
				}
			}
		}
	}
	for _, d := range daemons {
		for i := range 10 {
			d.docker(b, "run", "-d", "--network", "none", "--name", fmt.Sprintf("idle%d", i), ref, "sleep", "3600")
		}
	}
	execs := map[string][]time.Duration{}
	for i := -1; i < rounds; i++ {
		for _, d := range daemons {
			s := time.Now()
			d.docker(b, "exec", "idle0", "true")
			if i >= 0 {
				execs[d.name] = append(execs[d.name], time.Since(s))
			}
		}
	}
	time.Sleep(time.Second)
	rss := map[string]int{}
	for _, d := range daemons {
		rss[d.name] = rssKB(d.cmd.Process.Pid)
		if d.name == "dockerd" {
			for _, child := range children(d.cmd.Process.Pid) {
				rss[d.name] += rssKB(child) // its own containerd
			}
		}
	}
	// BuildKit's builds last: a daemon's BuildKit stays loaded once it ran,
	// and the memory above is that of a node that does not build.
	bkBuilds, bkPeak := buildKitBuilds(b, daemons, ref)
	med := func(v []time.Duration) time.Duration {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	fmt.Printf("\nthe docker CLI against berthd and dockerd 20.10, %d rounds, interleaved (median)\n", rounds)
	fmt.Printf("docker run --rm --network none busybox true: berthd %s, dockerd %s: %.2fx\n",
		med(run["berthd"]).Round(100*time.Microsecond), med(run["dockerd"]).Round(100*time.Microsecond), float64(med(run["berthd"]))/float64(med(run["dockerd"])))
	fmt.Printf("berth run --rm --network none busybox true (the berth CLI, berthd): %s, the docker CLI on berthd %s: %.2fx\n",
		med(run["berth"]).Round(100*time.Microsecond), med(run["berthd"]).Round(100*time.Microsecond), float64(med(run["berth"]))/float64(med(run["berthd"])))
	fmt.Printf("docker run -d -p 8080 -p 9090/udp (host ports picked) on a user network: berthd %s, dockerd %s: %.2fx\n",
		med(published["berthd"]).Round(100*time.Microsecond), med(published["dockerd"]).Round(100*time.Microsecond), float64(med(published["berthd"]))/float64(med(published["dockerd"])))
	for _, verb := range []string{"ps", "images"} {
		bt, dt := med(lists["berth "+verb]), med(lists["docker "+verb])
		fmt.Printf("%s on berthd: berth %s, docker %s: %.2fx\n", verb, bt.Round(100*time.Microsecond), dt.Round(100*time.Microsecond), float64(bt)/float64(dt))
	}
	for _, mode := range []string{"uncached", "cached"} {
		bt, dt := med(builds["berthd "+mode]), med(builds["dockerd "+mode])
		fmt.Printf("docker build of 5 steps, %s (classic builder): berthd %s, dockerd %s: %.2fx\n", mode, bt.Round(100*time.Microsecond), dt.Round(100*time.Microsecond), float64(bt)/float64(dt))
	}
	if bkBuilds != nil {
		for _, mode := range []string{"uncached", "cached"} {
			bt, dt := med(bkBuilds["berthd "+mode]), med(bkBuilds["dockerd "+mode])
			fmt.Printf("buildx build (BuildKit) of 8 steps, %s: berthd %s, dockerd %s: %.2fx\n", mode, bt.Round(100*time.Microsecond), dt.Round(100*time.Microsecond), float64(bt)/float64(dt))
		}
		fmt.Printf("daemon RSS at its peak during the BuildKit builds: berthd %.1f MB, dockerd + its containerd %.1f MB: %.2fx\n",
			float64(bkPeak["berthd"])/1024, float64(bkPeak["dockerd"])/1024, float64(bkPeak["berthd"])/float64(bkPeak["dockerd"]))
	}
	fmt.Printf("docker exec idle0 true: berthd %s, dockerd %s: %.2fx\n",
		med(execs["berthd"]).Round(100*time.Microsecond), med(execs["dockerd"]).Round(100*time.Microsecond), float64(med(execs["berthd"]))/float64(med(execs["dockerd"])))
	fmt.Printf("daemon RSS with 10 running containers: berthd %.1f MB, dockerd + its containerd %.1f MB: %.2fx\n",
		float64(rss["berthd"])/1024, float64(rss["dockerd"])/1024, float64(rss["berthd"])/float64(rss["dockerd"]))
}

// buildKitBuilds times an 8-step Dockerfile (a cache mount, a COPY of a
// source tree, three RUN steps) built by each daemon's BuildKit through
// buildx's docker driver, without the cache and with it, interleaved, and
// samples each daemon's memory meanwhile. RUN steps have --network none on
// both: dockerd runs without its bridge here. Nil when buildx is not built.
func buildKitBuilds(b *testing.B, daemons []*daemon, ref string) (map[string][]time.Duration, map[string]int) {
	buildx := os.Getenv("BERTH_BUILDX")
	if buildx == "" {
		buildx = "/var/cache/berth-buildx/v0.38.2/buildx"
	}
	if _, err := os.Stat(buildx); err != nil {
		fmt.Printf("buildx is not built (make buildx): no BuildKit builds timed\n")
		return nil, nil
	}
	ctxDir := b.TempDir()
	for i := range 50 {
		_ = os.MkdirAll(filepath.Join(ctxDir, "src", fmt.Sprint(i%5)), 0o755)
		_ = os.WriteFile(filepath.Join(ctxDir, "src", fmt.Sprint(i%5), fmt.Sprintf("f%d.txt", i)), []byte(strings.Repeat("source line\n", 200)), 0o644)
	}
	_ = os.WriteFile(filepath.Join(ctxDir, "app.conf"), []byte("key=value\n"), 0o644)
	_ = os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+ref+`
ARG VERSION=1
ENV APP_HOME=/app
WORKDIR /app
COPY src/ ./src/
RUN --mount=type=cache,target=/var/cache/pkgs sh -c 'for i in $(seq 1 200); do [ -f /var/cache/pkgs/p$i ] || echo pkg$i > /var/cache/pkgs/p$i; done; mkdir -p deps; cp /var/cache/pkgs/* deps/'
RUN sh -c 'cat src/*/*.txt | wc -l > build.out; for i in $(seq 1 300); do echo compiled $i; done >> build.out'
COPY app.conf /etc/app.conf
RUN chmod -R go-w /app && ln -s /app/build.out /build.out
CMD ["cat", "/app/build.out"]
`), 0o644)
	var mu sync.Mutex
	peak := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, d := range daemons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := rssKB(d.cmd.Process.Pid)
				if d.name == "dockerd" {
					for _, c := range children(d.cmd.Process.Pid) {
						n += rssKB(c)
					}
				}
				mu.Lock()
				peak[d.name] = max(peak[d.name], n)
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	out := map[string][]time.Duration{}
	cfg := b.TempDir()
	for i := -2; i < 10; i++ { // two warm-up rounds: the first builds after a start are the slowest
		for _, d := range daemons {
			for _, mode := range []string{"uncached", "cached"} {
				args := []string{"build", "--network", "none", "-q", "-t", "bench:bk", ctxDir}
				if mode == "uncached" {
					args = append(args, "--no-cache")
				}
				cmd := exec.Command(buildx, args...)
				cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+cfg, "BUILDX_NO_DEFAULT_ATTESTATIONS=1")
				s := time.Now()
				if o, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%s: buildx %s: %v\n%s", d.name, strings.Join(args, " "), err, o)
				}
				if i >= 0 {
					out[d.name+" "+mode] = append(out[d.name+" "+mode], time.Since(s))
				}
			}
		}
	}
	close(stop)
	wg.Wait()
	return out, peak
}

func rssKB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}

func children(pid int) []int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}
