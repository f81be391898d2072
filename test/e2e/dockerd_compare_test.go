package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/fixtures"
)

// startDockerd runs Debian's dockerd (20.10) with state of its own, no
// bridge and no iptables rules, for the comparison with berthd, and returns
// its socket; it is stopped, and its files removed, when the test ends.
func startDockerd(t *testing.T) string {
	t.Helper()
	fixtures.RequireBinary(t, "dockerd")
	base, err := os.MkdirTemp("", "berth-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(base, "docker.sock")
	cmd := exec.Command("dockerd", "-H", "unix://"+sock, "--data-root", filepath.Join(base, "data"), "--exec-root", filepath.Join(base, "exec"),
		"--pidfile", filepath.Join(base, "dockerd.pid"), "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
		"--oom-score-adjust=0", "--containerd-namespace", "berth-compare", "--containerd-plugins-namespace", "berth-compare-plugins")
	logf, _ := os.Create(filepath.Join(base, "dockerd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	t.Cleanup(func() {
		out, _ := exec.Command("docker", "-H", "unix://"+sock, "ps", "-aq").Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			_ = exec.Command("docker", append([]string{"-H", "unix://" + sock, "rm", "-f"}, ids...)...).Run()
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		_ = exec.Command("umount", "-R", base).Run()
		os.RemoveAll(base)
	})
	fixtures.RemoveCgroupOnCleanup(t, "/docker")
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(base, "dockerd.log"))
			t.Fatalf("dockerd did not listen on %s:\n%s", sock, b)
		}
	}
	return sock
}

var (
	longID  = regexp.MustCompile(`\b(sha256:)?[0-9a-f]{64}\b`)
	shortHx = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	since   = regexp.MustCompile(`(Up|Exited \(\d+\)) [^\n]*?(ago|seconds|second|minutes|minute|hours)\b`)
)

// normalize hides what differs between any two daemons: IDs and times.
func normalize(s string) string {
	s = longID.ReplaceAllString(s, "<id>")
	s = shortHx.ReplaceAllString(s, "<id>")
	return since.ReplaceAllString(s, "$1 <time>")
}

// TestDockerdComparison runs one script of docker CLI commands against
// berthd and against Debian's dockerd and fails on any difference in exit
// code, output or error (IDs and times aside): where Berth differs from
// Docker, it shows up here as a diff. Networking stays out (dockerd runs
// without a bridge here).
func TestDockerdComparison(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	dockerdSock := startDockerd(t)
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}, Env: []string{"IMG=1"}}), fixtures.Registry(t), "library/cmp:1")
	n := "--network=none"
	script := [][]string{
		{"pull", "-q", ref},
		{"run", "--rm", n, ref, "echo", "hello"},
		{"run", "--rm", n, ref, "sh", "-c", "echo out; echo err >&2; exit 3"},
		{"run", "--rm", n, "-e", "A=1", "-w", "/tmp", "-u", "nobody", ref, "sh", "-c", "echo $A $IMG $(pwd) $(id -u)"},
		{"run", "--rm", n, "--entrypoint", "echo", ref, "x", "y"},
		{"create", "--name", "cmp1", n, "-e", "B=2", "--label", "team=a", ref, "sh", "-c", "echo made; exit 4"},
		{"ps", "-a", "--format", "{{.Names}} {{.Status}} {{.Labels}}"},
		{"start", "-a", "cmp1"},
		{"inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.Config.Env}} {{.Config.Labels}} {{.Name}}", "cmp1"},
		{"logs", "cmp1"},
		{"ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}"},
		{"ps", "-a", "--filter", "label=team=a", "--format", "{{.Names}}"},
		{"rename", "cmp1", "cmp2"},
		{"rm", "cmp2"},
		{"rm", "nosuch"},
		{"inspect", "nosuch"},
		{"run", "-d", "--name", "cmp3", n, ref, "sleep", "600"},
		{"exec", "cmp3", "sh", "-c", "exit 5"},
		{"exec", "-e", "C=3", "cmp3", "sh", "-c", "echo $C"},
		{"rm", "cmp3"},
		{"stop", "-t", "0", "cmp3"},
		{"rm", "cmp3"},
		{"volume", "create", "cmpvol"},
		{"run", "--rm", n, "-v", "cmpvol:/d", ref, "sh", "-c", "echo kept > /d/f"},
		{"run", "--rm", n, "-v", "cmpvol:/d:ro", ref, "cat", "/d/f"},
		{"volume", "ls", "-q"},
		{"volume", "rm", "cmpvol"},
		{"volume", "rm", "cmpvol"},
		{"tag", ref, "cmp-tag:1"},
		{"images", "--format", "{{.Repository}}:{{.Tag}}", "cmp-tag"},
		{"rmi", "cmp-tag:1"},
		{"run", "--rm", n, "nosuch-image-anywhere.invalid/x:1", "true"},
	}
	// Where Berth answers as today's dockerd does and Debian's 20.10 does
	// not, the difference is expected.
	newer := map[string]string{
		"rm cmp3": "dockerd 25+ words a refusal to remove a running container as Berth does",
	}
	diffs := 0
	for _, args := range script {
		var got [2][3]string
		for i, sock := range []string{d.dockerSocket(), dockerdSock} {
			cmd := exec.Command("docker", args...)
			cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+t.TempDir())
			out, errOut, code := runCLI(t, cmd)
			got[i] = [3]string{normalize(out), normalize(firstLine(errOut)), strconv.Itoa(code)}
		}
		if got[0] != got[1] && newer[strings.Join(args, " ")] != "" && got[0][2] == got[1][2] {
			t.Logf("docker %s: expected difference (%s)", strings.Join(args, " "), newer[strings.Join(args, " ")])
			continue
		}
		if got[0] != got[1] {
			diffs++
			t.Errorf("docker %s differs:\n  berthd: exit %s, stdout %q, stderr %q\n  dockerd: exit %s, stdout %q, stderr %q",
				strings.Join(args, " "), got[0][2], got[0][0], got[0][1], got[1][2], got[1][0], got[1][1])
		}
	}
	t.Logf("comparison with dockerd: %d commands, %d differences", len(script), diffs)
}
