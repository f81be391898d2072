package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/test/fixtures"
)

// buildxBin is buildx from the module proxy (make buildx), run as a binary
// of its own: installed as the CLI's plugin it would turn the classic
// builder's tests into BuildKit builds.
func buildxBin(t *testing.T) string {
	t.Helper()
	p := os.Getenv("BERTH_BUILDX")
	if p == "" {
		p = "/var/cache/berth-buildx/v0.38.2/buildx"
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("buildx is not built (make buildx): %v", err)
	}
	return p
}

// buildxCmd is buildx with its docker driver on sock.
func buildxCmd(t *testing.T, sock string, args ...string) *exec.Cmd {
	cmd := exec.Command(buildxBin(t), args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+t.TempDir(), "BUILDX_NO_DEFAULT_ATTESTATIONS=1")
	return cmd
}

// writeContext writes files (name → content) into a new build context.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBuildKit: buildx's docker driver builds on berthd's BuildKit: RUN
// steps run, COPY copies, and the image is at once berthd's — docker run
// runs it, docker images lists it under its tag.
func TestBuildKit(t *testing.T) {
	requireCNI(t)
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	mustDocker(t, d, "pull", ref)
	dir := writeContext(t, map[string]string{
		"greet.txt": "greeting\n",
		"Dockerfile": "FROM " + ref + `
RUN echo built-by-run > /run.txt
COPY greet.txt /greet.txt
CMD ["cat", "/run.txt", "/greet.txt"]
`,
	})
	out := mustRun(t, buildxCmd(t, d.dockerSocket(), "build", "--progress=plain", "-t", "bk:1", dir))
	t.Logf("%s", out)
	if got := mustDocker(t, d, "run", "--rm", "bk:1"); got != "built-by-run\ngreeting\n" {
		t.Errorf("the built image's CMD printed %q", got)
	}
	if got := mustDocker(t, d, "images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(got, "bk:1") {
		t.Errorf("docker images does not list bk:1:\n%s", got)
	}
}
