package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestCompose: Debian's docker-compose 1.29 runs a two-service project
// against berthd: a web server with a named volume and a published port,
// and a client that reaches it by service name on the project's network;
// up -d, ps, logs, exec, down -v leave nothing behind.
func TestCompose(t *testing.T) {
	requireCNI(t)
	fixtures.RequireBinary(t, "docker-compose")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	port := freePort(t)
	dir := t.TempDir()
	project := fmt.Sprintf(`version: "3.8"
services:
  web:
    image: %s
    command: ["sh", "-c", "mkdir -p /www && echo served > /www/index.html && echo kept > /data/mark && exec httpd -f -p 80 -h /www"]
    volumes: ["webdata:/data"]
    ports: ["127.0.0.1:%d:80"]
  client:
    image: %s
    depends_on: [web]
    command: ["sh", "-c", "for i in $$(seq 50); do wget -qO- http://web/ && break; sleep 0.2; done; echo client done; exec sleep 600"]
volumes:
  webdata: {}
`, ref, port, ref)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(project), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := func(args ...string) (string, error) {
		cmd := exec.Command("docker-compose", append([]string{"-p", "demo"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.dockerSocket(), "COMPOSE_INTERACTIVE_NO_CLI=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustCompose := func(args ...string) string {
		t.Helper()
		out, err := compose(args...)
		if err != nil {
			t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	t.Cleanup(func() { _, _ = compose("down", "-v") })
	mustCompose("up", "-d")
	var body string
	for i := 0; i < 100; i++ {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = string(b); body == "served\n" {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if body != "served\n" {
		t.Errorf("the published port answered %q", body)
	}
	if out := mustCompose("ps"); !strings.Contains(out, "demo_web_1") || !strings.Contains(out, "demo_client_1") || !strings.Contains(out, "Up") {
		t.Errorf("docker-compose ps:\n%s", out)
	}
	var logs string
	for i := 0; i < 100 && !strings.Contains(logs, "client done"); i++ {
		logs = mustCompose("logs", "client")
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(logs, "served") || !strings.Contains(logs, "client done") {
		t.Errorf("the client did not reach web by name; its logs:\n%s", logs)
	}
	if out := mustCompose("exec", "-T", "web", "cat", "/data/mark"); strings.TrimSpace(out) != "kept" {
		t.Errorf("docker-compose exec: %q", out)
	}
	mustCompose("down", "-v")
	if out := mustDocker(t, d, "ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left after down: %q", out)
	}
	if out := mustDocker(t, d, "volume", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("volumes left after down -v: %q", out)
	}
	if out := mustDocker(t, d, "network", "ls", "--filter", "type=custom", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("networks left after down: %q", out)
	}
	assertNothingLeft(t, d)
}
