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
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/fixtures"
)

// dockerCmd is the real docker CLI, pointed at d's Docker API socket.
func dockerCmd(t *testing.T, d *daemon, args ...string) *exec.Cmd {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.dockerSocket(), "DOCKER_CONFIG="+t.TempDir())
	return cmd
}

// dockerCLI runs the docker CLI against d and returns what it printed.
func dockerCLI(t *testing.T, d *daemon, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLI(t, dockerCmd(t, d, args...))
}

func mustDocker(t *testing.T, d *daemon, args ...string) string {
	t.Helper()
	return mustRun(t, dockerCmd(t, d, args...))
}

// runCLI runs a client command and returns what it printed and its exit code.
func runCLI(t *testing.T, cmd *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return o.String(), e.String(), code
}

// mustRun is runCLI, failing the test unless the command succeeds.
func mustRun(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, errOut, code := runCLI(t, cmd)
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s%s", strings.Join(cmd.Args, " "), code, out, errOut)
	}
	return out
}

// TestDockerCLI: the real docker CLI drives berthd: version, pull (and the
// pull that `docker run` makes itself), images, run -d, ps, inspect, logs
// (stdout and stderr apart), wait, stop, rm and its refusal of a running
// container, a name conflict, a missing container; none of it is seen by
// the CRI, and nothing is left.
func TestDockerCLI(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	host := fixtures.Registry(t)
	ref := fixtures.PushBusybox(t, host)
	other := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Env: []string{"OTHER=1"}}), host, "library/other:1")

	if out := mustDocker(t, d, "version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"); !strings.Contains(out, " 1.50") {
		t.Fatalf("docker version: %q", out)
	}
	if out := mustDocker(t, d, "pull", ref); !strings.Contains(out, "Digest: sha256:") {
		t.Fatalf("docker pull: %q", out)
	}
	if out := mustDocker(t, d, "images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, strings.TrimSuffix(ref, ":latest")) {
		t.Fatalf("docker images: %q", out)
	}
	// save, rmi, load: the image comes back under its name.
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	mustDocker(t, d, "save", "-o", archive, ref)
	mustDocker(t, d, "rmi", ref)
	if out := mustDocker(t, d, "load", "-i", archive); !strings.Contains(out, "Loaded image") {
		t.Fatalf("docker load: %q", out)
	}
	mustDocker(t, d, "image", "inspect", ref)
	id := strings.TrimSpace(mustDocker(t, d, "run", "-d", "--name", "web", ref, "sleep", "600"))
	if len(id) != 64 {
		t.Fatalf("docker run -d printed %q, want an ID", id)
	}
	if out := mustDocker(t, d, "ps", "--format", "{{.Names}} {{.Status}}"); !strings.Contains(out, "web Up") {
		t.Fatalf("docker ps: %q", out)
	}
	if out := mustDocker(t, d, "inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.Name}}", "web"); strings.TrimSpace(out) != "running true /web" {
		t.Fatalf("docker inspect: %q", out)
	}
	// An image not pulled yet: docker run pulls it on the 404 of create.
	mustDocker(t, d, "run", "-d", "--name", "talk", other, "sh", "-c", "echo hello; echo oops >&2; exit 3")
	if out := strings.TrimSpace(mustDocker(t, d, "wait", "talk")); out != "3" {
		t.Fatalf("docker wait: %q, want 3", out)
	}
	out, errOut, code := dockerCLI(t, d, "logs", "talk")
	if code != 0 || out != "hello\n" || errOut != "oops\n" {
		t.Fatalf("docker logs: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out := mustDocker(t, d, "ps", "-a", "--format", "{{.Names}} {{.Status}}"); !strings.Contains(out, "talk Exited (3)") {
		t.Fatalf("docker ps -a: %q", out)
	}
	for filter, want := range map[string]string{"name=tal": "talk", "status=exited": "talk", "status=running": "web", "id=" + id[:10]: "web"} {
		if out := strings.TrimSpace(mustDocker(t, d, "ps", "-a", "--filter", filter, "--format", "{{.Names}}")); out != want {
			t.Errorf("docker ps --filter %s: %q, want %q", filter, out, want)
		}
	}
	if _, errOut, code := dockerCLI(t, d, "create", "--name", "talk", ref); code == 0 || !strings.Contains(errOut, "already in use") {
		t.Fatalf("a second container named talk: exit %d, %q", code, errOut)
	}
	if _, errOut, code := dockerCLI(t, d, "rm", "web"); code == 0 || !strings.Contains(errOut, "container is running") {
		t.Fatalf("docker rm of a running container: exit %d, %q", code, errOut)
	}
	if _, errOut, code := dockerCLI(t, d, "inspect", "nosuch"); code == 0 || !strings.Contains(strings.ToLower(errOut), "no such") {
		t.Fatalf("docker inspect nosuch: exit %d, %q", code, errOut)
	}

	// Attached: the output, apart, and the exit code; --rm removes it.
	out, errOut, code = dockerCLI(t, d, "run", "--rm", "--name", "once", ref, "sh", "-c", "echo out; echo err >&2; exit 5")
	if code != 5 || out != "out\n" || errOut != "err\n" {
		t.Fatalf("docker run --rm: exit %d, stdout %q, stderr %q; want 5, out, err", code, out, errOut)
	}
	for i := 0; i < 100; i++ {
		if out := mustDocker(t, d, "ps", "-a", "--format", "{{.Names}}"); !strings.Contains(out, "once") {
			break
		} else if i == 99 {
			t.Fatalf("docker run --rm left its container: %q", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// -i: stdin reaches the container, and its end ends the container's.
	cat := dockerCmd(t, d, "run", "-i", "--rm", ref, "sh", "-c", "cat; echo done")
	cat.Stdin = strings.NewReader("piped in\n")
	if out, err := cat.Output(); err != nil || string(out) != "piped in\ndone\n" {
		t.Fatalf("docker run -i with piped stdin: %q %v", out, err)
	}
	if out := mustDocker(t, d, "run", "--name", "hi", ref, "echo", "hi"); out != "hi\n" {
		t.Fatalf("docker run echo hi: %q", out)
	}

	// exec: output apart, exit code; none in a container that has exited.
	out, errOut, code = dockerCLI(t, d, "exec", "web", "sh", "-c", "echo x; echo y >&2; exit 4")
	if code != 4 || out != "x\n" || errOut != "y\n" {
		t.Fatalf("docker exec: exit %d, stdout %q, stderr %q; want 4, x, y", code, out, errOut)
	}
	if _, errOut, code := dockerCLI(t, d, "exec", "talk", "true"); code == 0 || !strings.Contains(errOut, "not running") {
		t.Fatalf("docker exec in an exited container: exit %d, %q", code, errOut)
	}

	// Kubernetes sees none of it.
	ctx := context.Background()
	if pods, err := d.rs.ListPodSandbox(ctx, nil); err != nil || len(pods) != 0 {
		t.Fatalf("the CRI lists %d pods (%v), want none of Docker's", len(pods), err)
	}
	if cs, err := d.rs.ListContainers(ctx, nil); err != nil || len(cs) != 0 {
		t.Fatalf("the CRI lists %d containers (%v), want none of Docker's", len(cs), err)
	}

	// stats and top.
	if out := mustDocker(t, d, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "web"); !strings.HasPrefix(out, "web ") || !strings.Contains(out, "B / ") {
		t.Fatalf("docker stats: %q", out)
	}
	if out := mustDocker(t, d, "top", "web"); !strings.Contains(out, "sleep 600") {
		t.Fatalf("docker top: %q", out)
	}
	// pause, unpause, a signal by name.
	mustDocker(t, d, "pause", "web")
	if out := mustDocker(t, d, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "web"); strings.TrimSpace(out) != "paused true" {
		t.Fatalf("after docker pause: %q", out)
	}
	mustDocker(t, d, "unpause", "web")
	mustDocker(t, d, "run", "-d", "--name", "sig", ref, "sh", "-c", "trap 'echo got-usr1; exit 7' USR1; while :; do sleep 0.1; done")
	time.Sleep(300 * time.Millisecond) // the trap is set
	mustDocker(t, d, "kill", "-s", "USR1", "sig")
	if out := strings.TrimSpace(mustDocker(t, d, "wait", "sig")); out != "7" {
		t.Fatalf("docker kill -s USR1: exit %q, want 7 from the trap", out)
	}
	mustDocker(t, d, "rm", "sig")
	mustDocker(t, d, "pause", "web") // stop thaws it first
	mustDocker(t, d, "stop", "-t", "1", "web")
	mustDocker(t, d, "rm", "web", "talk", "hi")
	if out := mustDocker(t, d, "ps", "-a", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("containers left: %q", out)
	}
	assertNothingLeft(t, d)
}

// TestDockerEvents: docker events streams a container's create, start,
// die and destroy, with its name, and ends at --until; --since replays the
// events kept, those of images, volumes and networks too, filtered by type.
func TestDockerEvents(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	mustDocker(t, d, "pull", ref)
	until := time.Now().Add(4 * time.Second).Unix()
	ev := dockerCmd(t, d, "events", "--until", strconv.FormatInt(until, 10), "--filter", "type=container",
		"--format", "{{.Action}} {{.Actor.Attributes.name}}")
	var out strings.Builder
	var errOut strings.Builder
	ev.Stdout, ev.Stderr = &out, &errOut
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	mustDocker(t, d, "run", "--rm", "--name", "evt", ref, "true")
	if err := ev.Wait(); err != nil {
		t.Fatalf("docker events: %v %s", err, errOut.String())
	}
	for _, want := range []string{"create evt", "start evt", "die evt", "destroy evt"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("docker events: no %q in %q", want, out.String())
		}
	}

	// History: --since replays what happened before the command, images,
	// volumes and networks included; --filter picks among them.
	mustDocker(t, d, "tag", ref, "evtag:1")
	mustDocker(t, d, "volume", "create", "evvol")
	mustDocker(t, d, "network", "create", "evnet")
	mustDocker(t, d, "volume", "rm", "evvol")
	mustDocker(t, d, "network", "rm", "evnet")
	mustDocker(t, d, "rmi", "evtag:1")
	since := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
	now := strconv.FormatInt(time.Now().Unix()+1, 10)
	hist := mustDocker(t, d, "events", "--since", since, "--until", now, "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	for _, want := range []string{"container create evt", "container destroy evt", "image pull", "image tag", "image untag",
		"volume create", "volume destroy", "network create evnet", "network destroy evnet"} {
		if !strings.Contains(hist, want) {
			t.Errorf("docker events --since: no %q in\n%s", want, hist)
		}
	}
	only := mustDocker(t, d, "events", "--since", since, "--until", now, "--filter", "type=network", "--format", "{{.Type}}")
	if strings.TrimSpace(strings.ReplaceAll(only, "network\n", "")) != "" || !strings.Contains(only, "network") {
		t.Errorf("docker events --filter type=network: %q", only)
	}
}

// TestDockerAPIErrors: Docker's error JSON and status codes for an API
// version out of range, malformed JSON and a missing image.
func TestDockerAPIErrors(t *testing.T) {
	d := startDaemon(t)
	for _, tc := range []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"GET", "/v1.99/version", "", 400, "not supported"},
		{"GET", "/v1.50/_ping", "", 200, ""},
		{"POST", "/v1.50/containers/create", "{not json", 400, "malformed JSON"},
		{"POST", "/v1.50/containers/create", `{"Image":"127.0.0.1:1/none:latest"}`, 404, "No such image"},
		{"POST", "/v1.50/containers/create?name=bad%20name", `{"Image":"x"}`, 400, "Invalid container name"},
		{"GET", "/v1.50/containers/nosuch/json", "", 404, "No such container"},
		// Two networks at create: refused before API 1.44, as dockerd does.
		{"POST", "/v1.43/containers/create", `{"Image":"127.0.0.1:1/none:latest","NetworkingConfig":{"EndpointsConfig":{"b":{},"a":{}}}}`, 400, "Container cannot be connected to network endpoints: a, b"},
		{"POST", "/v1.44/containers/create", `{"Image":"127.0.0.1:1/none:latest","NetworkingConfig":{"EndpointsConfig":{"b":{},"a":{}}}}`, 404, "No such image"},
	} {
		code, body := dockerAPI(t, d, tc.method, tc.path, tc.body)
		var e struct{ Message string }
		_ = json.Unmarshal([]byte(body), &e)
		if code != tc.code || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, code, e.Message, tc.code, tc.msg)
		}
	}
	if pods, _ := d.rs.ListPodSandbox(context.Background(), nil); len(pods) != 0 {
		t.Errorf("bad requests left pods")
	}
	assertNothingLeft(t, d)
}

// dockerAPI makes one raw request of d's Docker API, as the SDKs send it,
// and returns the status and body.
func dockerAPI(t *testing.T, d *daemon, method, path, body string) (int, string) {
	t.Helper()
	return dockerAPIAt(t, d.dockerSocket(), method, path, body)
}

// dockerAPIAt is dockerAPI for any Docker socket (dockerd's too).
func dockerAPIAt(t *testing.T, sock, method, path, body string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequest(method, "http://docker"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDockerVolumes: a named volume made by `docker volume create` or by
// first use in -v keeps its files across containers; it cannot be removed
// while a container uses it; a host directory binds too.
func TestDockerVolumes(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	mustDocker(t, d, "pull", ref)
	mustDocker(t, d, "volume", "create", "data")
	mustDocker(t, d, "run", "--rm", "-v", "data:/data", ref, "sh", "-c", "echo kept > /data/f")
	if out := mustDocker(t, d, "run", "--rm", "-v", "data:/data:ro", ref, "cat", "/data/f"); out != "kept\n" {
		t.Fatalf("a volume's file in the next container: %q", out)
	}
	mustDocker(t, d, "run", "--name", "user", "-v", "auto:/a", ref, "touch", "/a/x")
	if out := mustDocker(t, d, "volume", "ls", "--format", "{{.Name}}"); !strings.Contains(out, "auto") || !strings.Contains(out, "data") {
		t.Fatalf("docker volume ls: %q", out)
	}
	if _, errOut, code := dockerCLI(t, d, "volume", "rm", "auto"); code == 0 || !strings.Contains(errOut, "in use") {
		t.Fatalf("removing a volume in use: exit %d %q", code, errOut)
	}
	// Labels, given by `volume create` or by a --mount's volume options, and
	// the list's filters (each label asked for; dangling; name).
	mustDocker(t, d, "volume", "create", "--label", "team=a", "--label", "tier=db", "labelled")
	mustDocker(t, d, "create", "--name", "mounter", "--mount", "type=volume,src=bymount,dst=/m,volume-label=team=a", ref, "true")
	for _, c := range []struct {
		filters []string
		want    string
	}{
		{[]string{"label=team=a"}, "bymount labelled"},
		{[]string{"label=team=a", "label=tier=db"}, "labelled"},
		{[]string{"label=team=b"}, ""},
		{[]string{"dangling=true", "label=team"}, "labelled"},
		{[]string{"dangling=false"}, "auto bymount"},
		{[]string{"name=abel"}, "labelled"},
	} {
		args := []string{"volume", "ls", "-q"}
		for _, f := range c.filters {
			args = append(args, "--filter", f)
		}
		if got := strings.Join(strings.Fields(mustDocker(t, d, args...)), " "); got != c.want {
			t.Errorf("volume ls %v: %q, want %q", c.filters, got, c.want)
		}
	}
	if got := mustDocker(t, d, "volume", "inspect", "-f", "{{json .Labels}}", "labelled"); strings.TrimSpace(got) != `{"team":"a","tier":"db"}` {
		t.Errorf("labels inspected: %s", got)
	}
	mustDocker(t, d, "volume", "prune", "-a", "-f", "--filter", "label=tier=db")
	if got := strings.TrimSpace(mustDocker(t, d, "volume", "ls", "-q", "--filter", "label=team=a")); got != "bymount" {
		t.Errorf("prune --filter label=tier=db left %q, want only bymount (in use)", got)
	}
	mustDocker(t, d, "rm", "mounter")
	mustDocker(t, d, "volume", "rm", "bymount")
	host := t.TempDir()
	mustDocker(t, d, "run", "--rm", "-v", host+":/h", ref, "sh", "-c", "echo bound > /h/b")
	if b, _ := os.ReadFile(filepath.Join(host, "b")); string(b) != "bound\n" {
		t.Fatalf("bind of a host directory: %q", b)
	}
	mustDocker(t, d, "rm", "user")
	mustDocker(t, d, "volume", "rm", "auto", "data")
	if out := strings.TrimSpace(mustDocker(t, d, "volume", "ls", "-q")); out != "" {
		t.Fatalf("volumes left: %q", out)
	}
	assertNothingLeft(t, d)
}

// TestDockerNetwork: -p publishes a port on 127.0.0.1 through CNI's
// portmap; --network none leaves loopback only; --network host the node's.
func TestDockerNetwork(t *testing.T) {
	requireCNI(t)
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	port := freePort(t)
	mustDocker(t, d, "run", "-d", "--name", "www", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), ref,
		"sh", "-c", "mkdir -p /www && echo pong > /www/index.html && exec httpd -f -p 8080 -h /www")
	var body string
	for i := 0; i < 100; i++ {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = string(b); body == "pong\n" {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if body != "pong\n" {
		t.Fatalf("published port %d answered %q", port, body)
	}
	if out := mustDocker(t, d, "run", "--rm", "--network", "none", ref, "ls", "/sys/class/net"); strings.Fields(out)[0] != "lo" || len(strings.Fields(out)) != 1 {
		t.Fatalf("--network none: interfaces %q, want lo only", out)
	}
	host, _ := os.Hostname()
	if out := mustDocker(t, d, "run", "--rm", "--network", "host", ref, "hostname"); strings.TrimSpace(out) != host {
		t.Fatalf("--network host: hostname %q, want %q", out, host)
	}
	mustDocker(t, d, "rm", "-f", "www")
	assertNothingLeft(t, d)
}

// TestDockerPythonSDK: the Python docker SDK (docker-py) against berthd:
// version, pull, run (wait, then logs), list, inspect, remove.
func TestDockerPythonSDK(t *testing.T) {
	if exec.Command("python3", "-c", "import docker").Run() != nil {
		t.Skip("the Python docker SDK is not installed")
	}
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	script := `
import sys, docker
c = docker.DockerClient(base_url="unix://" + sys.argv[1], version="auto")
assert c.version()["ApiVersion"] == "1.50", c.version()
c.images.pull(sys.argv[2])
out = c.containers.run(sys.argv[2], ["sh", "-c", "echo from-sdk"], name="sdk")
assert out == b"from-sdk\n", out
sdk = c.containers.get("sdk")
assert sdk.status == "exited" and sdk.attrs["State"]["ExitCode"] == 0, sdk.attrs["State"]
bg = c.containers.run(sys.argv[2], ["sleep", "600"], detach=True, name="bg")
assert [x.name for x in c.containers.list()] == ["bg"], c.containers.list()
assert sorted(x.name for x in c.containers.list(all=True)) == ["bg", "sdk"]
r = bg.exec_run(["echo", "in-bg"])
assert r.exit_code == 0 and r.output == b"in-bg\n", r
# stream=False is sent as "False": one document, not a stream.
st = bg.stats(stream=False)
assert "memory_stats" in st and "cpu_stats" in st, st.keys()
st = bg.stats(stream=False, one_shot=True)
assert "memory_stats" in st, st.keys()
# Ports the daemon picks, read back as the SDK reads them.
web = c.containers.run(sys.argv[2], ["sleep", "600"], detach=True, name="web", ports={"8080/tcp": None, "9090/udp": ("127.0.0.1", None)})
web.reload()
p = web.ports
assert len(p["8080/tcp"]) in (1, 2) and p["8080/tcp"][0]["HostIp"] == "0.0.0.0" and int(p["8080/tcp"][0]["HostPort"]) > 0, p
assert p["9090/udp"][0]["HostIp"] == "127.0.0.1", p
v = c.volumes.create("sdkvol", labels={"k": "v"})
assert v.attrs["Labels"] == {"k": "v"}, v.attrs
assert [x.name for x in c.volumes.list(filters={"label": "k=v"})] == ["sdkvol"]
assert [x.name for x in c.volumes.list(filters={"label": "k=other"})] == []
v.remove()
web.remove(force=True)
bg.remove(force=True)
sdk.remove()
try:
    c.containers.get("bg")
    raise SystemExit("bg still there")
except docker.errors.NotFound:
    pass
print("ok")
`
	// Every call must answer in finite time: a stream where one document
	// was asked for hangs the SDK.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", "-c", script, d.dockerSocket(), ref).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("python docker SDK: %v\n%s", err, out)
	}
	assertNothingLeft(t, d)
}

// TestDockerPythonSDKMethods calls the Python SDK's container, image,
// volume, network and system methods (testdata/sdk_methods.py), each of
// which must answer as dockerd does and in finite time.
func TestDockerPythonSDKMethods(t *testing.T) {
	if exec.Command("python3", "-c", "import docker").Run() != nil {
		t.Skip("the Python docker SDK is not installed")
	}
	requireCNI(t)
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", "testdata/sdk_methods.py", d.dockerSocket(), ref).CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatalf("python docker SDK: %v\n%s", err, out)
	}
	mustDocker(t, d, "rmi", ref)
	assertNothingLeft(t, d)
}

// TestDockerRestart: docker start of an exited container runs it again in
// place (same ID, its log and writable layer kept); docker restart; restart
// policies on-failure:N, always (until docker stop), and always across a
// berthd restart during which the container exited.
func TestDockerRestart(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	mustDocker(t, d, "pull", ref)
	inspect := func(name, format string) string {
		return strings.TrimSpace(mustDocker(t, d, "inspect", "-f", format, name))
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for i := 0; i < 200; i++ {
			if ok() {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("never: %s", what)
	}

	id := strings.TrimSpace(mustDocker(t, d, "run", "-d", "--name", "again", ref, "sh", "-c", "echo run >> /count; cat /count"))
	mustDocker(t, d, "wait", "again")
	mustDocker(t, d, "start", "again")
	mustDocker(t, d, "wait", "again")
	if got := inspect("again", "{{.Id}} {{.RestartCount}}"); got != id+" 1" {
		t.Fatalf("after docker start of the exited container: %q", got)
	}
	if out := mustDocker(t, d, "logs", "again"); out != "run\nrun\nrun\n" {
		t.Fatalf("its log after two runs (the writable layer kept): %q", out)
	}
	mustDocker(t, d, "run", "-d", "--name", "up", ref, "sleep", "600")
	if out, errOut, code := dockerCLI(t, d, "restart", "-t", "1", "up"); code != 0 {
		t.Fatalf("docker restart: %d %s %s", code, out, errOut)
	}
	if got := inspect("up", "{{.State.Status}} {{.RestartCount}}"); got != "running 1" {
		t.Fatalf("after docker restart: %q", got)
	}

	mustDocker(t, d, "run", "-d", "--restart", "on-failure:2", "--name", "flaky", ref, "sh", "-c", "exit 3")
	eventually("on-failure:2 restarts twice and gives up", func() bool {
		return inspect("flaky", "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}") == "exited 2 3"
	})
	time.Sleep(time.Second)
	if got := inspect("flaky", "{{.RestartCount}}"); got != "2" {
		t.Fatalf("on-failure:2 restarted past its count: %s", got)
	}
	mustDocker(t, d, "run", "-d", "--restart", "always", "--name", "keeper", ref, "sh", "-c", "sleep 0.2")
	eventually("always restarts", func() bool {
		n, _ := strconv.Atoi(inspect("keeper", "{{.RestartCount}}"))
		return n >= 2
	})
	mustDocker(t, d, "stop", "-t", "1", "keeper")
	n := inspect("keeper", "{{.RestartCount}}")
	time.Sleep(time.Second)
	if got := inspect("keeper", "{{.State.Status}} {{.RestartCount}}"); got != "exited "+n {
		t.Fatalf("docker stop of an always container: %q, want it to stay exited (restarts %s)", got, n)
	}

	mustDocker(t, d, "run", "-d", "--restart", "always", "--name", "boot", ref, "sleep", "1")
	d.kill()
	time.Sleep(1500 * time.Millisecond) // it exits while berthd is down
	d.start(fixtures.Binaries(t))
	eventually("always container runs again after berthd's restart", func() bool {
		return inspect("boot", "{{.State.Status}}") == "running"
	})
	mustDocker(t, d, "rm", "-f", "again", "up", "flaky", "keeper", "boot")
	assertNothingLeft(t, d)
}
