// Package cri benchmarks berthd against containerd 1.6 (Debian's, with its
// CRI plugin), both driven through k8s.io/cri-client in one run, interleaved:
// pod start (RunPodSandbox to the exit of an echo container), ExecSync of
// `true`, and memory with idle pods (the daemon, and each shim).
//
//	make bench-cri   (go test -run '^$' -bench CRI -benchtime 1x ./test/bench/cri)
package cri

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/berth-runtime/berth/cni"
	"github.com/berth-runtime/berth/test/fixtures"
)

type target struct {
	name     string
	cmd      *exec.Cmd
	dir      string
	rs       internalapi.RuntimeService
	is       internalapi.ImageManagerService
	shimName string
	sock     string
}

// startTargets starts berthd and containerd side by side, each on its own
// socket and root under a fresh directory; stop stops both and removes it.
// containerd's sandbox image is a busybox "pause" pushed to host.
func startTargets(b *testing.B, name, host string) (targets []*target, stop func()) {
	return startTargetsWith(b, name, host, false)
}

// startTargetsWith is startTargets; debug serves berthd's pprof on
// debug.sock in its directory. containerd 2.4 joins as a third target when
// test/bench/containerd2.sh has built it.
func startTargetsWith(b *testing.B, name, host string, debug bool) (targets []*target, stop func()) {
	pause := fixtures.Push(b, fixtures.BusyboxImage(b, fixtures.ImageConfig{Entrypoint: []string{"sleep", "2147483647"}}), host, "pause:3.6")
	base, err := os.MkdirTemp("", "berth-bench-"+name+"-")
	if err != nil {
		b.Fatal(err)
	}
	args := []string{"--metrics-address", ""}
	if debug {
		args = append(args, "--debug-address", filepath.Join(base, "berthd", "debug.sock"))
	}
	targets = []*target{startBerthd(b, base, args...), startContainerd(b, base, host, pause)}
	if dir := containerd2Dir(); dir != "" {
		targets = append(targets, startContainerd2(b, base, dir, host, pause))
	}
	return targets, func() {
		for _, t := range targets {
			stopTarget(t)
		}
		os.RemoveAll(base)
	}
}

func BenchmarkCRI(b *testing.B) {
	fixtures.RequireRoot(b)
	fixtures.RequireBinary(b, "containerd")
	host := fixtures.Registry(b)
	ref := fixtures.PushBusybox(b, host)
	targets, stop := startTargets(b, "cri", host)
	defer func() {
		stop()
		fixtures.RemoveCgroupOnCleanup(b, "/berth-bench")
	}()
	ctx := context.Background()
	for _, t := range targets {
		if _, err := t.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
			b.Fatalf("%s pull: %v", t.name, err)
		}
	}

	// RunPodSandbox alone, with the bridge network, interleaved; and the
	// plugins alone (libcni ADD into a fresh namespace) for what is under both.
	const runps = 20
	runp := map[string][]time.Duration{}
	for i := -1; i < runps; i++ {
		for _, t := range targets {
			pod := podConfig(t, fmt.Sprintf("runp-%d", i+1))
			s := time.Now()
			podID, err := t.rs.RunPodSandbox(ctx, pod, "")
			if err != nil {
				b.Fatalf("%s RunPodSandbox: %v", t.name, err)
			}
			if i >= 0 {
				runp[t.name] = append(runp[t.name], time.Since(s))
			}
			_ = t.rs.StopPodSandbox(ctx, podID)
			_ = t.rs.RemovePodSandbox(ctx, podID)
		}
		if i >= 0 {
			runp["plugins alone"] = append(runp["plugins alone"], pluginsAlone(b, i))
		}
	}
	report("RunPodSandbox with the bridge network (bridge, host-local, portmap, firewall, bandwidth)", runps,
		append(targets, &target{name: "plugins alone"}), runp)
	fmt.Printf("berthd's own time beyond the plugins' (median): %s\n",
		(pct(runp["berthd"], .5) - pct(runp["plugins alone"], .5)).Round(100*time.Microsecond))

	// Pod start: RunPodSandbox → echo container exited, interleaved.
	const rounds = 20
	start := map[string][]time.Duration{}
	for i := -1; i < rounds; i++ {
		for _, t := range targets {
			d := runEchoPod(b, t, ref, fmt.Sprintf("start-%d", i+1))
			if i >= 0 {
				start[t.name] = append(start[t.name], d)
			}
		}
	}
	report("pod start: RunPodSandbox to the exit of `echo hello`", rounds, targets, start)

	// ExecSync of true into a running container, interleaved.
	cids := map[string]string{}
	for _, t := range targets {
		_, cid := runSleeper(b, t, ref, "exec-target")
		cids[t.name] = cid
	}
	const execs = 50
	execT := map[string][]time.Duration{}
	for i := -1; i < execs; i++ {
		for _, t := range targets {
			s := time.Now()
			if _, _, err := t.rs.ExecSync(ctx, cids[t.name], []string{"true"}, 10*time.Second); err != nil {
				b.Fatalf("%s ExecSync: %v", t.name, err)
			}
			if i >= 0 {
				execT[t.name] = append(execT[t.name], time.Since(s))
			}
		}
	}
	report("ExecSync of `true`", execs, targets, execT)

	// Memory with 10 idle one-container pods (plus the exec target).
	for i := 0; i < 10; i++ {
		for _, t := range targets {
			runSleeper(b, t, ref, fmt.Sprintf("idle-%d", i))
		}
	}
	time.Sleep(2 * time.Second)
	fmt.Printf("\nmemory with 11 idle one-container pods\n")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "runtime\tdaemon RSS\tshims\tshim RSS (median)\tshim PSS (median)\tall shims RSS\t")
	for _, t := range targets {
		shims := pidsNamed(t.shimName, t.dir)
		var rss, pss []int
		for _, p := range shims {
			r, ps := memKB(p)
			rss, pss = append(rss, r), append(pss, ps)
		}
		dr, _ := memKB(t.cmd.Process.Pid)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t\n", t.name, mb(dr), len(shims), mb(median(rss)), mb(median(pss)), mb(sum(rss)))
	}
	tw.Flush()
}

func mb(kb int) string { return fmt.Sprintf("%.1f MB", float64(kb)/1024) }

func median(v []int) int {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func sum(v []int) int {
	t := 0
	for _, x := range v {
		t += x
	}
	return t
}

// memKB reads a process's RSS and PSS in kB.
func memKB(pid int) (rss, pss int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "Rss:":
			rss = n
		case "Pss:":
			pss = n
		}
	}
	return rss, pss
}

// pidsNamed lists processes whose command line starts with a binary named
// name and mentions dir (so only this bench's shims count).
func pidsNamed(name, dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if filepath.Base(args[0]) == name && strings.Contains(string(b), dir) {
			out = append(out, pid)
		}
	}
	return out
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func report(title string, n int, targets []*target, times map[string][]time.Duration) {
	fmt.Printf("\n%s, %d rounds, interleaved\n", title, n)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "runtime\tmedian\tp90\tmedian/containerd\t")
	base := times["containerd"]
	for _, t := range targets {
		d := times[t.name]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t\n", t.name, pct(d, .5).Round(100*time.Microsecond),
			pct(d, .9).Round(100*time.Microsecond), float64(pct(d, .5))/float64(pct(base, .5)))
	}
	tw.Flush()
}

func podConfig(t *target, name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Uid: name, Namespace: "bench"},
		LogDirectory: filepath.Join(t.dir, "logs", name),
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			// Pod network on both sides: the same bridge conflist (deploy/cni).
			CgroupParent: "/berth-bench/" + t.name + "-" + name,
		},
	}
}

func runEchoPod(b *testing.B, t *target, ref, name string) time.Duration {
	ctx := context.Background()
	pod := podConfig(t, name)
	s := time.Now()
	podID, err := t.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		b.Fatalf("%s RunPodSandbox: %v", t.name, err)
	}
	cid, err := t.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "echo"}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: []string{"echo", "hello"}, LogPath: "echo.log",
	}, pod)
	if err != nil {
		b.Fatalf("%s CreateContainer: %v", t.name, err)
	}
	if err := t.rs.StartContainer(ctx, cid); err != nil {
		b.Fatalf("%s StartContainer: %v", t.name, err)
	}
	for {
		st, err := t.rs.ContainerStatus(ctx, cid, false)
		if err != nil {
			b.Fatal(err)
		}
		if st.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			break
		}
		time.Sleep(time.Millisecond)
	}
	d := time.Since(s)
	_ = t.rs.StopPodSandbox(ctx, podID)
	_ = t.rs.RemovePodSandbox(ctx, podID)
	return d
}

func runSleeper(b *testing.B, t *target, ref, name string) (string, string) {
	ctx := context.Background()
	pod := podConfig(t, name)
	podID, err := t.rs.RunPodSandbox(ctx, pod, "")
	if err != nil {
		b.Fatalf("%s RunPodSandbox: %v", t.name, err)
	}
	cid, err := t.rs.CreateContainer(ctx, podID, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"}, Image: &runtimeapi.ImageSpec{Image: ref},
		Command: []string{"sleep", "3600"}, LogPath: "sleep.log",
	}, pod)
	if err != nil {
		b.Fatalf("%s CreateContainer: %v", t.name, err)
	}
	if err := t.rs.StartContainer(ctx, cid); err != nil {
		b.Fatalf("%s StartContainer: %v", t.name, err)
	}
	return podID, cid
}

func connect(b *testing.B, t *target, sock string) {
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			rs, err1 := remote.NewRemoteRuntimeService(ctx, "unix://"+sock, 30*time.Second, noop.NewTracerProvider(), false)
			is, err2 := remote.NewRemoteImageService(ctx, "unix://"+sock, 30*time.Second, noop.NewTracerProvider(), false)
			if err1 == nil && err2 == nil {
				t.rs, t.is = rs, is
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not answer on %s", t.name, sock)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func startBerthd(b *testing.B, base string, args ...string) *target {
	return startBerthdNamed(b, base, "berthd", args...)
}

// startBerthdNamed starts a berthd under base/name with extra flags.
func startBerthdNamed(b *testing.B, base, name string, args ...string) *target {
	dir := filepath.Join(base, name)
	t := &target{name: name, dir: dir, shimName: "berth-shim"}
	sock := filepath.Join(dir, "berth.sock")
	t.sock = sock
	t.cmd = exec.Command(filepath.Join(fixtures.Binaries(b), "berthd"), append([]string{"--cri-socket", sock, "--docker-socket", filepath.Join(dir, "docker.sock"),
		"--root", filepath.Join(dir, "root"), "--state", filepath.Join(dir, "state"), "--log-level", "warn",
		"--cni-conf-dir", benchCNIDir(b, dir),
		// NRI on (the default) but on sockets of their own: containerd 2.4 beside them serves the default one.
		"--nri-socket", filepath.Join(dir, "nri.sock"), "--nri-plugin-path", filepath.Join(dir, "nri-plugins")}, args...)...)
	start(b, t)
	connect(b, t, sock)
	return t
}

func startContainerd(b *testing.B, base, registry, pause string) *target {
	dir := filepath.Join(base, "containerd")
	t := &target{name: "containerd", dir: dir, shimName: "containerd-shim-runc-v2"}
	sock := filepath.Join(dir, "containerd.sock")
	t.sock = sock
	cni := benchCNIDir(b, dir)
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors.%q]
    endpoint = ["http://%s"]
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, filepath.Join(dir, "opt"), pause, cni, registry, registry)
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644)
	t.cmd = exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	start(b, t)
	connect(b, t, sock)
	return t
}

// containerd2Dir is where test/bench/containerd2.sh put containerd 2.4's
// binaries ($BERTH_CONTAINERD2_DIR overrides), or "" when they are not there.
func containerd2Dir() string {
	dirs, _ := filepath.Glob("/var/cache/berth-bench/containerd-v2.4.*")
	if d := os.Getenv("BERTH_CONTAINERD2_DIR"); d != "" {
		dirs = []string{d}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "containerd-shim-runc-v2")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

// startContainerd2 starts containerd 2.4 from bin (its shim first on PATH)
// configured as startContainerd configures 1.6: the same CNI config, the
// same pause image, the local registry over plain HTTP.
func startContainerd2(b *testing.B, base, bin, registry, pause string) *target {
	dir := filepath.Join(base, "containerd2.4")
	t := &target{name: "containerd2.4", dir: dir, shimName: "containerd-shim-runc-v2"}
	sock := filepath.Join(dir, "containerd.sock")
	t.sock = sock
	cni := benchCNIDir(b, dir)
	certs := filepath.Join(dir, "certs.d", registry)
	if err := os.MkdirAll(certs, 0o755); err != nil {
		b.Fatal(err)
	}
	hosts := fmt.Sprintf("server = \"http://%s\"\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", registry, registry)
	os.WriteFile(filepath.Join(certs, "hosts.toml"), []byte(hosts), 0o644)
	cfg := fmt.Sprintf(`version = 3
root = %q
state = %q
[grpc]
  address = %q
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = %q
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = %q
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, pause, filepath.Join(dir, "certs.d"), cni)
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644)
	t.cmd = exec.Command(filepath.Join(bin, "containerd"), "--config", filepath.Join(dir, "config.toml"))
	t.cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	start(b, t)
	connect(b, t, sock)
	return t
}

// benchCNIDir is a CNI config dir under dir holding Berth's default conflist,
// which both daemons use: the same plugins, bridge and address range.
func benchCNIDir(b *testing.B, dir string) string {
	d := filepath.Join(dir, "net.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, cni.DefaultFile), cni.DefaultConflist(cni.DefaultSubnet), 0o644); err != nil {
		b.Fatal(err)
	}
	return d
}

func start(b *testing.B, t *target) {
	os.MkdirAll(t.dir, 0o755)
	logf, _ := os.Create(filepath.Join(t.dir, "daemon.log"))
	t.cmd.Stdout, t.cmd.Stderr = logf, logf
	if err := t.cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", t.name, err)
	}
}

// stopTarget removes every pod, stops the daemon and kills its shims.
func stopTarget(t *target) {
	if t.rs != nil {
		ctx := context.Background()
		pods, _ := t.rs.ListPodSandbox(ctx, nil)
		for _, p := range pods {
			_ = t.rs.StopPodSandbox(ctx, p.Id)
			_ = t.rs.RemovePodSandbox(ctx, p.Id)
		}
	}
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = t.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = t.cmd.Process.Kill()
	}
	for _, p := range pidsNamed(t.shimName, t.dir) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	out, _ := exec.Command("sh", "-c", "grep ' "+t.dir+"' /proc/self/mountinfo | awk '{print $5}' | sort -r").Output()
	for _, m := range strings.Fields(string(out)) {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// pluginsAlone times a CNI ADD of the bench network by libcni itself (through
// Berth's cni package) into a namespace made by `ip netns`, then removes both.
func pluginsAlone(b *testing.B, i int) time.Duration {
	name := fmt.Sprintf("berth-bench-%d-%d", os.Getpid(), i)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "delete", name).Run()
	dir := b.TempDir()
	m := cni.New(cni.Config{ConfDir: benchCNIDir(b, dir), BinDirs: []string{"/opt/cni/bin", "/usr/lib/cni"},
		CacheDir: filepath.Join(dir, "cache"), DefaultDir: dir, DefaultSubnet: cni.DefaultSubnet}, slog.New(slog.DiscardHandler))
	n, err := m.Current()
	if err != nil {
		b.Fatal(err)
	}
	pod := cni.Pod{ID: name, Name: name, Namespace: "bench", UID: name, NetNS: "/run/netns/" + name}
	ctx := context.Background()
	s := time.Now()
	if _, err := m.Add(ctx, n, pod); err != nil {
		b.Fatal(err)
	}
	d := time.Since(s)
	if err := m.Del(ctx, n, pod); err != nil {
		b.Fatal(err)
	}
	return d
}
