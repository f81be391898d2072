package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/berth-runtime/berth/test/fixtures"
)

// testcontainers-go, unchanged, against berthd's Docker socket with its
// reaper on. The reaper's image (testcontainers/ryuk) cannot be fetched
// here, so the test tags a stand-in that speaks Ryuk's protocol
// (test/fixtures/reaper) under Ryuk's name, as an air-gapped user would
// load the real one; what it does with the socket is what Ryuk does.

const tcChildEnv = "BERTH_TESTCONTAINERS_CHILD"

func TestTestcontainers(t *testing.T) {
	if os.Getenv(tcChildEnv) != "" {
		t.Skip("the child's own test runs instead")
	}
	requireCNI(t)
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	reg := fixtures.Registry(t)
	box := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh"}}), reg, "library/tcbox:1")
	reaper, err := mutate.AppendLayers(
		fixtures.BusyboxImage(t, fixtures.ImageConfig{Entrypoint: []string{"/usr/bin/reaper"}, ExposedPorts: []string{"8080/tcp"}}),
		fixtures.Layer(t, tarOf(t, map[string]string{"usr/bin/reaper": string(fixtures.GoBinary(t, "./test/fixtures/reaper"))})))
	if err != nil {
		t.Fatal(err)
	}
	mustDocker(t, d, "pull", "-q", fixtures.Push(t, reaper, reg, "testcontainers/ryuk:stand-in"))
	mustDocker(t, d, "tag", reg+"/testcontainers/ryuk:stand-in", "testcontainers/ryuk:0.14.0")
	mustDocker(t, d, "pull", "-q", box)

	// Run inside a container (this VM has /.dockerenv), testcontainers
	// reaches published ports on the bridge network's gateway, and without
	// one it would dial the machine's default route: refuse to go on then.
	if gw := strings.TrimSpace(mustDocker(t, d, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "bridge")); net.ParseIP(gw) == nil {
		t.Fatalf("the bridge network shows no gateway (%q)", gw)
	}

	// testcontainers reads these once a process; no other test here uses it.
	t.Setenv("DOCKER_HOST", "unix://"+d.dockerSocket())
	t.Setenv("TESTCONTAINERS_RYUK_RECONNECTION_TIMEOUT", "1s")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	start := time.Now()
	web, err := testcontainers.Run(ctx, box,
		testcontainers.WithExposedPorts("8080/tcp"),
		testcontainers.WithCmd("sh", "-c", "mkdir -p /www && echo pong > /www/index.html && echo serving && exec httpd -f -p 8080 -h /www"),
		testcontainers.WithFiles(testcontainers.ContainerFile{Reader: strings.NewReader("copied before start\n"), ContainerFilePath: "/etc/early.txt", FileMode: 0o640}),
		testcontainers.WithWaitStrategy(
			wait.ForLog("serving"),
			wait.ForListeningPort("8080/tcp"),
			wait.ForHTTP("/").WithPort("8080/tcp").WithResponseMatcher(func(r io.Reader) bool { b, _ := io.ReadAll(r); return string(b) == "pong\n" }),
			wait.ForExec([]string{"test", "-f", "/www/index.html"}),
		))
	if err != nil {
		t.Fatalf("testcontainers.Run web: %v", err)
	}
	t.Logf("first container (its reaper too) up in %v", time.Since(start).Round(time.Millisecond))
	host, err := web.Host(ctx)
	if err != nil {
		t.Fatal(err)
	}
	port, err := web.MappedPort(ctx, "8080/tcp")
	if err != nil {
		t.Fatal(err)
	}
	if got := httpGet(t, "http://"+net.JoinHostPort(host, port.Port())+"/"); got != "pong\n" {
		t.Fatalf("the mapped port %s:%s answered %q", host, port.Port(), got)
	}
	if reapers := strings.Fields(mustDocker(t, d, "ps", "-q", "--filter", "label=org.testcontainers.ryuk=true")); len(reapers) != 1 {
		t.Fatalf("reaper containers running: %v, want one", reapers)
	}

	// Files in and out, exec, logs.
	if err := web.CopyToContainer(ctx, []byte("hello from the test\n"), "/tmp/in.txt", 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/tmp/in.txt": "hello from the test\n", "/etc/early.txt": "copied before start\n"} {
		rc, err := web.CopyFileFromContainer(ctx, path)
		if err != nil {
			t.Fatalf("CopyFileFromContainer %s: %v", path, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != want {
			t.Fatalf("%s read back %q, want %q", path, b, want)
		}
	}
	code, out, err := web.Exec(ctx, []string{"sh", "-c", "stat -c %a /tmp/in.txt; echo to-stderr >&2; exit 3"}, tcexec.Multiplexed())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(out); code != 3 || !strings.Contains(string(b), "600\n") || !strings.Contains(string(b), "to-stderr") {
		t.Fatalf("exec: exit %d, %q", code, b)
	}
	logs, err := web.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(logs); !strings.Contains(string(b), "serving") {
		t.Fatalf("logs: %q", b)
	}

	// A network, two containers, one reaching the other by its alias; a
	// health check waited for.
	nw, err := network.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	server, err := testcontainers.Run(ctx, box,
		network.WithNetwork([]string{"backend"}, nw),
		testcontainers.WithCmd("sh", "-c", "mkdir -p /www && echo from-backend > /www/index.html && sleep 1 && touch /tmp/healthy && exec httpd -f -p 80 -h /www"),
		testcontainers.WithConfigModifier(func(c *container.Config) {
			c.Healthcheck = &container.HealthConfig{Test: []string{"CMD-SHELL", "test -f /tmp/healthy"}, Interval: 200 * time.Millisecond, Retries: 50}
		}),
		testcontainers.WithWaitStrategy(wait.ForHealthCheck()))
	if err != nil {
		t.Fatalf("run server: %v", err)
	}
	if st, err := server.State(ctx); err != nil || st.Health == nil || st.Health.Status != "healthy" {
		t.Fatalf("server after ForHealthCheck: %+v %v", st, err)
	}
	clientC, err := testcontainers.Run(ctx, box, network.WithNetwork([]string{"frontend"}, nw), testcontainers.WithCmd("sleep", "300"))
	if err != nil {
		t.Fatalf("run client: %v", err)
	}
	code, out, err = clientC.Exec(ctx, []string{"wget", "-qO-", "http://backend/"}, tcexec.Multiplexed())
	if b, _ := io.ReadAll(out); err != nil || code != 0 || string(b) != "from-backend\n" {
		t.Fatalf("client → backend by alias: exit %d, %q, %v", code, b, err)
	}

	for _, c := range []testcontainers.Container{clientC, server, web} {
		if err := testcontainers.TerminateContainer(c, testcontainers.StopTimeout(time.Second)); err != nil {
			t.Fatalf("terminate: %v", err)
		}
	}
	if err := nw.Remove(ctx); err != nil {
		t.Fatalf("network remove: %v", err)
	}

	// A test process that ends without terminating what it made (a crash,
	// a forgotten Terminate): its reaper removes it all once it is gone.
	child := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestTestcontainersLeftBehind$", "-test.v")
	child.Env = append(os.Environ(), tcChildEnv+"=1", "BERTH_TC_IMAGE="+box)
	childOut, err := child.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, childOut)
	}
	if !strings.Contains(string(childOut), "left behind:") {
		t.Fatalf("child made nothing:\n%s", childOut)
	}
	waitGone(t, d, "the child's container, network and volume, and both reapers")
	// Both reapers ended well: the parent's once its containers were
	// terminated, the child's once it had removed what the child left.
	codes := strings.Fields(mustDocker(t, d, "events", "--since", "0", "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "event=die", "--filter", "label=org.testcontainers.ryuk=true", "--format", "{{.Actor.Attributes.exitCode}}"))
	if len(codes) != 2 || codes[0] != "0" || codes[1] != "0" {
		t.Errorf("reapers' exit codes: %v, want two 0s", codes)
	}
	if v := strings.TrimSpace(mustDocker(t, d, "volume", "ls", "-q")); v != "" {
		t.Errorf("volumes left: %s", v)
	}
	if n := mustDocker(t, d, "network", "ls", "--filter", "label=org.testcontainers=true", "-q"); strings.TrimSpace(n) != "" {
		t.Errorf("networks left: %s", n)
	}
	assertNothingLeft(t, d)
}

// TestTestcontainersLeftBehind is TestTestcontainers' child: it makes a
// container, a network and a volume, and ends without removing them.
func TestTestcontainersLeftBehind(t *testing.T) {
	if os.Getenv(tcChildEnv) == "" {
		t.Skip("run by TestTestcontainers as a child process")
	}
	ctx := context.Background()
	nw, err := network.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := testcontainers.Run(ctx, os.Getenv("BERTH_TC_IMAGE"), network.WithNetwork([]string{"left"}, nw),
		testcontainers.WithCmd("sleep", "300"),
		testcontainers.WithMounts(testcontainers.VolumeMount("tcdata", "/data")))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("left behind: container %s, network %s\n", c.GetContainerID(), nw.ID)
}

// waitGone waits until berthd holds no containers and no pods at all
// (--rm's removal ends with the pod's).
func waitGone(t *testing.T, d *daemon, what string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		left := strings.Fields(mustDocker(t, d, "ps", "-aq"))
		pods, _ := os.ReadDir(filepath.Join(d.state, "sandboxes"))
		if len(left) == 0 && len(pods) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not reaped: containers %v\n%s", what, left, mustDocker(t, d, "ps", "-a"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
