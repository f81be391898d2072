package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/fixtures"
)

// scrape reads berthd's /metrics with Prometheus' own text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the counter, gauge or histogram count of name whose labels
// include want; 0 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
next:
	for _, m := range f.Metric {
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// TestMetrics: the counters and gauges move as an image is pulled, pods and
// containers are created, and containers exit (OOM-killed among them).
func TestMetrics(t *testing.T) {
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := startDaemonWith(t, fmt.Sprintf("metrics_address = %q\n", addr))
	ctx := context.Background()
	before := scrape(t, addr)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "berth_recovery_duration_seconds", "berth_shims"} {
		if before[name] == nil {
			t.Fatalf("no %s in /metrics", name)
		}
	}
	_, failing, _ := startPod(t, d, "metrics-err", nil, "sh", "-c", "exit 3")
	waitExited(t, d, failing)
	_, oom, _ := startPod(t, d, "metrics-oom", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20, MemorySwapLimitInBytes: 16 << 20},
		"awk", `BEGIN { s = "a"; while (1) s = s s }`)
	waitExited(t, d, oom)
	startPod(t, d, "metrics-run", nil, "sleep", "600")

	after := scrape(t, addr)
	runp := map[string]string{"method": "/runtime.v1.RuntimeService/RunPodSandbox", "code": "OK"}
	for _, c := range []struct {
		name  string
		label map[string]string
		min   float64
	}{
		{"berth_image_pulls_total", map[string]string{"result": "success"}, 3}, // startPod pulls every time
		{"berth_image_pull_bytes_total", nil, 1},
		{"berth_image_pull_duration_seconds", nil, 3},
		{"berth_cri_requests_total", runp, 3},
		{"berth_cri_request_duration_seconds", map[string]string{"method": "/runtime.v1.RuntimeService/RunPodSandbox"}, 3},
		{"berth_container_exits_total", map[string]string{"reason": "Error"}, 1},
		{"berth_container_exits_total", map[string]string{"reason": "OOMKilled"}, 1},
	} {
		if got := value(after, c.name, c.label) - value(before, c.name, c.label); got < c.min {
			t.Errorf("%s%v moved by %v, want at least %v", c.name, c.label, got, c.min)
		}
	}
	for _, c := range []struct {
		name  string
		label map[string]string
		want  float64
	}{
		{"berth_pods", map[string]string{"state": "ready"}, 3},
		{"berth_containers", map[string]string{"state": "exited"}, 2},
		{"berth_containers", map[string]string{"state": "running"}, 1},
		{"berth_shims", nil, 1},
	} {
		if got := value(after, c.name, c.label); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.label, got, c.want)
		}
	}
	// A failed call is counted under its code.
	_, _ = d.rs.ContainerStatus(ctx, "no-such-container", false)
	if v := value(scrape(t, addr), "berth_cri_requests_total", map[string]string{"method": "/runtime.v1.RuntimeService/ContainerStatus", "code": "NotFound"}); v < 1 {
		t.Errorf("NotFound ContainerStatus not counted (%v)", v)
	}
}

// TestNotifyReadyAfterRecovery: under systemd (Type=notify) berthd says
// READY=1 only once it has reconciled its containers and serves; a container
// that ran before the restart is running and listed by then.
func TestNotifyReadyAfterRecovery(t *testing.T) {
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	d := startDaemon(t)
	_, cid, _ := startPod(t, d, "notify", nil, "sleep", "600")
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(d.dir, "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	msgs := make(chan string, 8)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	d.start(fixtures.Binaries(t))
	select {
	case m := <-msgs:
		if !strings.Contains(m, "READY=1") {
			t.Fatalf("first notification %q", m)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no READY=1 within 15 s")
	}
	log, _ := os.ReadFile(d.logFile)
	restart := string(log[strings.LastIndex(string(log), "berthd shutting down"):])
	if !strings.Contains(restart, "msg=recovered") || !strings.Contains(restart, "reattached:1") {
		t.Fatalf("READY=1 came before the recovery was logged:\n%s", restart)
	}
	st, err := d.rs.ContainerStatus(context.Background(), cid, false)
	if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container after the restart: %+v %v", st.GetStatus(), err)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if !strings.Contains(m, "STOPPING=1") {
			t.Fatalf("at shutdown: %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no STOPPING=1 at shutdown")
	}
	t.Setenv("NOTIFY_SOCKET", "")
	d.start(fixtures.Binaries(t)) // for the cleanup's removal of the pod
}

// TestUpgradeInPlace: the binaries are replaced on disk (new inodes) while
// containers run, berthd restarts: every container stays running, answers
// exec and stops as asked; nothing is reported exited.
func TestUpgradeInPlace(t *testing.T) {
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	bin := t.TempDir()
	for _, b := range []string{"berthd", "berth-shim", "berth-runtime"} {
		copyFile(t, filepath.Join(fixtures.Binaries(t), b), filepath.Join(bin, b))
	}
	d := startDaemonFrom(t, bin, "")
	ctx := context.Background()
	var cids []string
	for i := range 3 {
		_, cid, _ := startPod(t, d, fmt.Sprintf("upgrade%d", i), nil, "sleep", "600")
		cids = append(cids, cid)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	// As a package manager does: write the new file beside, rename it over.
	for _, b := range []string{"berthd", "berth-shim", "berth-runtime"} {
		old, _ := os.Stat(filepath.Join(bin, b))
		copyFile(t, filepath.Join(fixtures.Binaries(t), b), filepath.Join(bin, b+".new"))
		if err := os.Rename(filepath.Join(bin, b+".new"), filepath.Join(bin, b)); err != nil {
			t.Fatal(err)
		}
		if now, _ := os.Stat(filepath.Join(bin, b)); os.SameFile(old, now) {
			t.Fatalf("%s kept its inode", b)
		}
	}
	d.start(bin)
	for _, cid := range cids {
		st, err := d.rs.ContainerStatus(ctx, cid, false)
		if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Fatalf("after the upgrade %s is %+v (%v)", cid, st.GetStatus(), err)
		}
		out, _, err := d.rs.ExecSync(ctx, cid, []string{"echo", "still here"}, 10*time.Second)
		if err != nil || string(out) != "still here\n" {
			t.Fatalf("exec after the upgrade: %q %v", out, err)
		}
	}
	if err := d.rs.StopContainer(ctx, cids[0], 5); err != nil {
		t.Fatal(err)
	}
	if st := waitExited(t, d, cids[0]); st.ExitCode != 137 && st.ExitCode != 143 {
		t.Fatalf("stopped after the upgrade with %d", st.ExitCode)
	}
	if b, _ := os.ReadFile(d.logFile); strings.Contains(string(b), "shim died") {
		t.Fatal("berthd took a shim whose binary was replaced for dead")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNodeCheck: `berthd check` prints one row per fact and fails on a
// failing one; crictl info (verbose Status) carries the same rows and the config.
func TestNodeCheck(t *testing.T) {
	fixtures.RequireRoot(t)
	berthd := filepath.Join(fixtures.Binaries(t), "berthd")
	conf := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(conf, []byte("registry_config_dir = \"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(berthd, "check", "--config", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("berthd check on this node: %v\n%s", err, out)
	}
	for _, row := range []string{"kernel", "cgroups", "overlayfs", "seccomp", "user namespaces", "CNI", "iptables", "runtime berth", "registry config", "disk"} {
		if !strings.Contains(string(out), "\n"+row+" ") {
			t.Errorf("no %q row:\n%s", row, out)
		}
	}
	// The default runtime missing is a failure, with its fix, and exit 1.
	if err := os.WriteFile(conf, []byte("[runtimes.berth]\npath = \"/nonexistent/berth-runtime\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(berthd, "check", "--config", conf).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "fail") || !strings.Contains(string(out), "/nonexistent/berth-runtime") {
		t.Fatalf("check with a missing runtime: %v\n%s", err, out)
	}

	d := startDaemon(t)
	st, err := d.rs.Status(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	var checks []struct{ Name, Status string }
	if err := json.Unmarshal([]byte(st.Info["checks"]), &checks); err != nil || len(checks) < 10 {
		t.Fatalf("checks in verbose Status: %v %q", err, st.Info["checks"])
	}
	if !strings.Contains(st.Info["config"], `"CNIConfDir"`) {
		t.Fatalf("config in verbose Status: %q", st.Info["config"])
	}
	// The default handler ("") and berth's own take recursive read-only mounts.
	rro := map[string]bool{}
	for _, h := range st.GetRuntimeHandlers() {
		rro[h.GetName()] = h.GetFeatures().GetRecursiveReadOnlyMounts()
	}
	if !rro[""] || !rro["berth"] {
		t.Fatalf("runtime handlers in Status: %v", st.GetRuntimeHandlers())
	}
	// kubelet asks which cgroup driver to use.
	rc, err := d.rs.RuntimeConfig(context.Background())
	if err != nil || rc.GetLinux().GetCgroupDriver() != runtimeapi.CgroupDriver_CGROUPFS {
		t.Fatalf("RuntimeConfig: %+v %v", rc, err)
	}
}

// TestVersionsAgree: the CRI's RuntimeVersion is a semantic version (kubelet
// parses it for `kubectl get node -o wide`), and every binary's --version
// says the same.
func TestVersionsAgree(t *testing.T) {
	d := startDaemon(t)
	v, err := d.rs.Version(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	semver := regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	if v.RuntimeName != "berth" || !semver.MatchString(v.RuntimeVersion) {
		t.Fatalf("Version: %s %q, want berth and a semantic version", v.RuntimeName, v.RuntimeVersion)
	}
	bin := fixtures.Binaries(t)
	for _, b := range []string{"berthd", "berth-shim", "berth-runtime", "berth-lazyfs"} {
		out, err := exec.Command(filepath.Join(bin, b), "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), v.RuntimeVersion) {
			t.Errorf("%s --version: %q %v, want %s", b, out, err, v.RuntimeVersion)
		}
	}
}

// TestSocketMode: the CRI socket is root's and 0660: no other user may
// drive the node's containers; the Docker socket too, its group docker's
// when the node has that group (as dockerd's).
func TestSocketMode(t *testing.T) {
	d := startDaemon(t)
	wantGid := uint32(0)
	if g, err := user.LookupGroup("docker"); err == nil {
		n, _ := strconv.Atoi(g.Gid)
		wantGid = uint32(n)
	}
	for sock, gid := range map[string]uint32{d.socket: 0, d.dockerSocket(): wantGid} {
		fi, err := os.Stat(sock)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 || st.Uid != 0 || st.Gid != gid {
			t.Errorf("%s: mode %v, uid %d, gid %d; want a socket, 0660, uid 0, gid %d", sock, fi.Mode(), st.Uid, st.Gid, gid)
		}
	}
}
