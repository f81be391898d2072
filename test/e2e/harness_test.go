package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	internalapi "k8s.io/cri-api/pkg/apis"
	remote "k8s.io/cri-client/pkg"

	"github.com/berth-runtime/berth/test/fixtures"
)

// daemon is a berthd subprocess on its own socket and directories.
type daemon struct {
	t       *testing.T
	cmd     *exec.Cmd
	dir     string
	socket  string
	root    string
	state   string
	logFile string
	// extraConfig is appended to the test's config file.
	extraConfig string
	rs          internalapi.RuntimeService
	is          internalapi.ImageManagerService
}

// startDaemon builds nothing: it runs the binaries of fixtures.Binaries.
// Directories sit under a short /tmp path: shim sockets must fit sun_path.
func startDaemon(t *testing.T) *daemon { return startDaemonWith(t, "") }

// startDaemonWith is startDaemon with more lines for berthd's config file.
func startDaemonWith(t *testing.T, extraConfig string) *daemon {
	t.Helper()
	fixtures.RequireRoot(t)
	return startDaemonFrom(t, fixtures.Binaries(t), extraConfig)
}

// startDaemonFrom runs the berthd (and berth-shim, berth-runtime) in bin.
func startDaemonFrom(t *testing.T, bin, extraConfig string) *daemon {
	t.Helper()
	d := newDaemon(t, extraConfig)
	d.start(bin)
	return d
}

// newDaemon lays out a daemon's directories, and their removal after the
// test, without starting it: a test may prepare them first (mount a small
// root, say), then call start.
func newDaemon(t *testing.T, extraConfig string) *daemon {
	t.Helper()
	fixtures.RequireRoot(t)
	dir, err := os.MkdirTemp("", "berth-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	// Searchable, as /run is: a pod's root in a user namespace of its own
	// must reach its bundle under the state directory.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, dir: dir, extraConfig: extraConfig, socket: filepath.Join(dir, "berth.sock"), root: filepath.Join(dir, "root"),
		state: filepath.Join(dir, "state"), logFile: filepath.Join(dir, "berthd.log")}
	t.Cleanup(func() {
		// Pods a failed test left: removed through berthd, so their networking goes too
		// (Docker's containers through the Docker API: the CRI does not list them).
		if d.cmd != nil {
			if _, err := exec.LookPath("docker"); err == nil {
				env := append(os.Environ(), "DOCKER_HOST=unix://"+d.dockerSocket(), "DOCKER_CONFIG="+os.TempDir())
				ps := exec.Command("docker", "ps", "-aq")
				ps.Env = env
				if out, err := ps.Output(); err == nil && len(strings.Fields(string(out))) > 0 {
					rm := exec.Command("docker", append([]string{"rm", "-f", "-v"}, strings.Fields(string(out))...)...)
					rm.Env = env
					_ = rm.Run()
				}
			}
		}
		if d.cmd != nil && d.rs != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			pods, _ := d.rs.ListPodSandbox(ctx, nil)
			for _, p := range pods {
				_ = d.rs.StopPodSandbox(ctx, p.Id)
				_ = d.rs.RemovePodSandbox(ctx, p.Id)
			}
			cancel()
		}
		d.stop()
		// BERTH_E2E_LOG=1 shows it for a test that passed too (a skip's reason).
		if t.Failed() || os.Getenv("BERTH_E2E_LOG") != "" {
			if b, err := os.ReadFile(d.logFile); err == nil {
				t.Logf("berthd log:\n%s", b)
			}
		}
		// Whatever a failed test left: containers, shims, mounts, then the dirs.
		d.killLeftovers()
		for _, m := range mountsUnder(dir) {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
		os.RemoveAll(dir)
	})
	return d
}

func (d *daemon) start(bin string) {
	d.t.Helper()
	if err := d.startErr(bin); err != nil {
		d.t.Fatal(err)
	}
}

// startErr is start, returning what went wrong instead of failing the test.
func (d *daemon) startErr(bin string) error {
	t := d.t
	logf, err := os.OpenFile(d.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// A config file of the test's own: the machine's /etc/berth/config.toml
	// must not change what the test sees.
	conf := filepath.Join(d.dir, "config.toml")
	// Its own CNI config dir too: empty, so pods get berthd's default network.
	regDir := filepath.Join(d.dir, "certs.d")
	extra := d.extraConfig
	if !strings.Contains(extra, "metrics_address") {
		extra = "metrics_address = \"\"\n" + extra // daemons side by side would want one port
	}
	if !strings.Contains(extra, "[nri]") {
		// NRI on, as by default, but on a socket and plugin dirs of the
		// test's own: daemons side by side, and the machine's plugins.
		extra += fmt.Sprintf("[nri]\nsocket_path = %q\nplugin_path = %q\nplugin_config_path = %q\n",
			d.nriSocket(), filepath.Join(d.dir, "nri", "plugins"), filepath.Join(d.dir, "nri", "conf.d"))
	}
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("registry_config_dir = %q\ncni_conf_dir = %q\n%s", regDir, d.netDir(), extra)), 0o644); err != nil {
		return err
	}
	d.cmd = exec.Command(filepath.Join(bin, "berthd"), "--cri-socket", d.socket, "--docker-socket", d.dockerSocket(), "--root", d.root,
		"--state", d.state, "--log-level", "debug", "--config", conf)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		return err
	}
	ctx := context.Background()
	deadline := time.Now().Add(15 * time.Second)
	for {
		// Dial, not stat: a berthd killed by SIGKILL leaves its socket file.
		if c, err := net.Dial("unix", d.socket); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return errors.New("berthd did not answer on its socket in 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ep := "unix://" + d.socket
	if d.rs, err = remote.NewRemoteRuntimeService(ctx, ep, 30*time.Second, noop.NewTracerProvider(), false); err != nil {
		return err
	}
	if d.is, err = remote.NewRemoteImageService(ctx, ep, 30*time.Second, noop.NewTracerProvider(), false); err != nil {
		return err
	}
	return nil
}

// removeAllPods stops and removes every pod, failing the test on an error.
func (d *daemon) removeAllPods() {
	d.t.Helper()
	ctx := context.Background()
	pods, err := d.rs.ListPodSandbox(ctx, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	for _, p := range pods {
		if err := d.rs.StopPodSandbox(ctx, p.Id); err != nil {
			d.t.Fatal(err)
		}
		if err := d.rs.RemovePodSandbox(ctx, p.Id); err != nil {
			d.t.Fatal(err)
		}
	}
}

// netDir is the daemon's CNI config directory (empty unless a test writes one).
func (d *daemon) netDir() string { return filepath.Join(d.dir, "net.d") }

// nriSocket is where NRI plugins connect to the daemon.
func (d *daemon) nriSocket() string { return filepath.Join(d.dir, "nri.sock") }

// dockerSocket is where the daemon serves the Docker Engine API.
func (d *daemon) dockerSocket() string { return filepath.Join(d.dir, "docker.sock") }

// kill stops berthd with SIGKILL, as a crash would.
func (d *daemon) kill() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_ = d.cmd.Wait()
	d.cmd = nil
}

// stop sends SIGTERM and waits; berthd must shut down cleanly and quickly.
func (d *daemon) stop() error {
	if d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		err = fmt.Errorf("berthd did not exit 15s after SIGTERM")
		<-done
	}
	d.cmd = nil
	return err
}

// mountsUnder lists mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append([]string{fields[4]}, out...)
		}
	}
	return out
}

// processesMentioning lists PIDs whose command line contains s.
func processesMentioning(s string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || e.Name() == "self" {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmdline, s) {
			out = append(out, e.Name()+": "+cmdline)
		}
	}
	return out
}

// killLeftovers force-deletes every container the runtimes still hold for
// this daemon and kills its shims: a failed test must not leave them running.
func (d *daemon) killLeftovers() {
	for _, rt := range fixtures.Runtimes(d.t) {
		name := rt.Name
		if name == "berth-runtime" {
			name = "berth"
		}
		root := filepath.Join(d.state, "runtime", name)
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			_ = exec.Command(rt.Path, "--root", root, "delete", "--force", e.Name()).Run()
		}
	}
	leftovers := append(processesMentioning("berth-shim --dir "+d.state), processesMentioning("berth-pause "+d.state)...)
	leftovers = append(leftovers, processesMentioning("berth-lazyfs --dir "+d.root)...)
	for _, p := range leftovers {
		pid, _, _ := strings.Cut(p, ":")
		if n, err := strconv.Atoi(pid); err == nil {
			_ = syscall.Kill(n, syscall.SIGKILL)
		}
	}
}
