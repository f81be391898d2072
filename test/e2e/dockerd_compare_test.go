package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
	hostPort = regexp.MustCompile(`(0\.0\.0\.0|127\.0\.0\.1|::|\[::\]):\d{2,5}\b`)
	jsonPort = regexp.MustCompile(`"HostPort":"\d+"`)
	longID   = regexp.MustCompile(`\b(sha256:)?[0-9a-f]{64}\b`)
	shortHx  = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	since    = regexp.MustCompile(`(Up|Exited \(\d+\)) [^\n]*?(ago|seconds|second|minutes|minute|hours)\b`)
)

// normalize hides what differs between any two daemons: IDs, times and
// the host ports each picked.
func normalize(s string) string {
	s = longID.ReplaceAllString(s, "<id>")
	s = shortHx.ReplaceAllString(s, "<id>")
	s = hostPort.ReplaceAllString(s, "$1:<port>")
	s = jsonPort.ReplaceAllString(s, `"HostPort":"<port>"`)
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
		// Published ports on a user-defined network, the host ports picked by
		// the daemon (dockerd's docker-proxy serves them here).
		{"network", "create", "cmpnet"},
		{"run", "-d", "--name", "cmpweb", "--network", "cmpnet", "-p", "127.0.0.1::80", "-p", "8080", "--expose", "9000", ref, "sleep", "600"},
		{"port", "cmpweb", "80"},
		{"port", "cmpweb", "9000"},
		{"port", "cmpweb", "8080/tcp"},
		{"inspect", "-f", "{{json .NetworkSettings.Ports}}", "cmpweb"},
		{"inspect", "-f", "{{json .HostConfig.PortBindings}} {{.HostConfig.PublishAllPorts}}", "cmpweb"},
		{"ps", "--filter", "name=cmpweb", "--format", "{{.Ports}}"},
		{"run", "-d", "--name", "cmpall", "--network", "cmpnet", "-P", "--expose", "7000", ref, "sleep", "600"},
		{"inspect", "-f", "{{json .HostConfig.PortBindings}} {{.HostConfig.PublishAllPorts}} {{len .NetworkSettings.Ports}}", "cmpall"},
		{"run", "--rm", "--network", "cmpnet", "-p", "80/sctpx", ref, "true"},
		{"create", "--name", "cmpnone", n, "-p", "8080", ref, "true"},
		{"inspect", "-f", "{{json .NetworkSettings.Ports}}", "cmpnone"},
		{"rm", "-f", "cmpweb", "cmpall", "cmpnone"},
		{"network", "rm", "cmpnet"},
		// Containers for the SDKs' raw requests below.
		{"run", "-d", "--name", "cmpraw", n, "--label", "team=raw", ref, "sleep", "600"},
		{"run", "--name", "cmpraw2", n, "--label", "team=raw", ref, "true"},
		{"volume", "create", "--label", "team=raw", "cmprawvol"},
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
	// What the SDKs send, not the CLI: booleans as Python writes them
	// ("True", "False"), as numbers and words; filters in both JSON
	// shapes; stats as one document.
	requests := []string{
		`/containers/json?all=True&filters={"label":{"team=raw":true}}`,
		`/containers/json?all=1&filters={"label":["team=raw"]}`,
		`/containers/json?all=no&filters={"label":["team=raw"]}`,
		`/containers/json?all=False&filters={"label":["team=raw"]}`,
		`/containers/json?all=0&filters={"label":["team=raw"],"status":["exited"]}`,
		`/containers/json?all=true&filters={"label":["team=raw","team=other"]}`,
		`/containers/cmpraw/stats?stream=False`,
		`/containers/cmpraw/stats?stream=0&one-shot=True`,
		`/containers/cmpraw/json?size=False`,
		`/volumes?filters={"label":["team=raw"]}`,
		`/volumes?filters={"label":{"team=raw":true},"dangling":{"true":true}}`,
		`/volumes?filters={"label":["team=nosuch"]}`,
		`/images/json?all=False&filters={"reference":{"cmp-none":true}}`,
		`/containers/nosuch/stats?stream=False`,
	}
	for _, path := range requests {
		var got [2]string
		for i, sock := range []string{d.dockerSocket(), dockerdSock} {
			got[i] = apiShape(dockerAPIAt(t, sock, "GET", "/v1.41"+path, ""))
		}
		if got[0] != got[1] {
			diffs++
			t.Errorf("GET %s differs:\n  berthd:  %s\n  dockerd: %s", path, got[0], got[1])
		}
	}
	for _, sock := range []string{d.dockerSocket(), dockerdSock} {
		dockerAPIAt(t, sock, "DELETE", "/v1.41/containers/cmpraw?force=True", "")
		dockerAPIAt(t, sock, "DELETE", "/v1.41/containers/cmpraw2?v=1", "")
		dockerAPIAt(t, sock, "DELETE", "/v1.41/volumes/cmprawvol", "")
	}
	t.Logf("comparison with dockerd: %d commands, %d raw requests, %d differences", len(script), len(requests), diffs)
}

// apiShape is what an SDK reads of an answer: its status, how many JSON
// documents it holds (a stream where one was asked for shows here), and
// the names listed, or for stats which of its main parts are there.
func apiShape(status int, body string) string {
	dec := json.NewDecoder(strings.NewReader(body))
	var docs []any
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			break
		}
		docs = append(docs, v)
	}
	var what []string
	for _, doc := range docs {
		switch v := doc.(type) {
		case []any:
			for _, e := range v {
				m, _ := e.(map[string]any)
				if names, ok := m["Names"].([]any); ok && len(names) > 0 {
					what = append(what, fmt.Sprint(names[0]))
				} else if tags, ok := m["RepoTags"].([]any); ok {
					what = append(what, fmt.Sprint(tags...))
				}
			}
		case map[string]any:
			if vols, ok := v["Volumes"].([]any); ok {
				for _, e := range vols {
					what = append(what, fmt.Sprint(e.(map[string]any)["Name"]))
				}
			}
			for _, k := range []string{"read", "cpu_stats", "memory_stats", "Name", "message"} {
				if x, ok := v[k]; ok && (k == "Name" || k == "message") {
					what = append(what, k+"="+normalize(fmt.Sprint(x)))
				} else if ok {
					what = append(what, k)
				}
			}
		}
	}
	slices.Sort(what)
	return fmt.Sprintf("%d, %d documents: %s", status, len(docs), strings.Join(what, " "))
}
