package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestBuild: docker build (the classic builder) against berthd: a two-stage
// Dockerfile with ARG (global and --build-arg), ENV, WORKDIR, COPY (from
// the context and --from a stage), RUN, USER, EXPOSE, LABEL and CMD makes
// an image that runs as asked; a rebuild with nothing changed takes every
// step from the cache and gives the same image; a changed file misses from
// its COPY on; a bad instruction and a failing RUN are refused with the
// reason, and nothing of the failed build is left.
func TestBuild(t *testing.T) {
	requireCNI(t)
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	ctxDir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(ctxDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("greet.txt", "greeting\n")
	write("Dockerfile", `ARG BASE
FROM $BASE AS base
ENV GREETING=hello
WORKDIR /app
COPY greet.txt ./
RUN echo "$GREETING from run" > /app/run.txt && cat greet.txt
FROM $BASE
ARG WHO=world
COPY --from=base /app /srv
RUN echo "hi $WHO" > /srv/who.txt
USER nobody
EXPOSE 8080
LABEL team=build
CMD ["cat", "/srv/run.txt", "/srv/greet.txt", "/srv/who.txt"]
`)
	build := func(args ...string) (string, string, int) {
		cmd := dockerCmd(t, d, append([]string{"build"}, args...)...)
		cmd.Env = append(cmd.Env, "DOCKER_BUILDKIT=0")
		return runCLI(t, cmd)
	}
	out, errOut, code := build("--build-arg", "BASE="+ref, "--build-arg", "WHO=berth", "-t", "built:1", ctxDir)
	if code != 0 || !strings.Contains(out, "Successfully tagged built:1") || !strings.Contains(out, "greeting") {
		t.Fatalf("docker build: exit %d\n%s%s", code, out, errOut)
	}
	if got := mustDocker(t, d, "run", "--rm", "built:1"); got != "hello from run\ngreeting\nhi berth\n" {
		t.Errorf("the built image's CMD printed %q", got)
	}
	if got := strings.TrimSpace(mustDocker(t, d, "image", "inspect", "-f", "{{.Config.User}} {{.Config.Labels.team}} {{.Config.WorkingDir}}", "built:1")); got != "nobody build" {
		t.Errorf("the built image's config: %q", got)
	}
	firstID := strings.TrimSpace(mustDocker(t, d, "image", "inspect", "-f", "{{.Id}}", "built:1"))

	out, errOut, code = build("--build-arg", "BASE="+ref, "--build-arg", "WHO=berth", "-t", "built:1", ctxDir)
	if code != 0 || strings.Count(out, "Using cache") != 4 {
		t.Errorf("rebuild with nothing changed: exit %d, %d steps from the cache, want 4\n%s%s", code, strings.Count(out, "Using cache"), out, errOut)
	}
	if id := strings.TrimSpace(mustDocker(t, d, "image", "inspect", "-f", "{{.Id}}", "built:1")); id != firstID {
		t.Errorf("the cached rebuild made %s, not %s", id, firstID)
	}
	write("greet.txt", "changed\n")
	out, _, code = build("--build-arg", "BASE="+ref, "--build-arg", "WHO=berth", "-t", "built:2", ctxDir)
	if code != 0 || strings.Count(out, "Using cache") != 0 {
		t.Errorf("rebuild after a changed file: exit %d, %d steps from the cache, want 0 (it is copied by the first)\n%s", code, strings.Count(out, "Using cache"), out)
	}
	if got := mustDocker(t, d, "run", "--rm", "built:2"); !strings.Contains(got, "changed") {
		t.Errorf("the rebuilt image has the old file: %q", got)
	}

	bad := t.TempDir()
	_ = os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM "+ref+"\nFROMM nothing\n"), 0o644)
	if out, errOut, code := build(bad); code == 0 || !strings.Contains(out+errOut, "FROMM") {
		t.Errorf("a bad instruction: exit %d %q %q", code, out, errOut)
	}
	_ = os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM "+ref+"\nRUN echo failing; exit 3\n"), 0o644)
	if out, errOut, code := build(bad); code == 0 || !strings.Contains(out+errOut, "returned a non-zero code: 3") {
		t.Errorf("a failing RUN: exit %d %q %q", code, out, errOut)
	}
	// The Python SDK builds through the same endpoint.
	if exec.Command("python3", "-c", "import docker").Run() == nil {
		py := `import docker, sys
c = docker.DockerClient(base_url=sys.argv[1])
img, logs = c.images.build(path=sys.argv[2], tag="pybuilt:1", buildargs={"BASE": sys.argv[3]})
print(c.containers.run("pybuilt:1", remove=True).decode(), end="")`
		cmd := exec.Command("python3", "-c", py, "unix://"+d.dockerSocket(), ctxDir, ref)
		if got, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(got), "hi world") {
			t.Errorf("the Python SDK's build: %v\n%s", err, got)
		}
	}
	mustDocker(t, d, "rmi", "built:1", "built:2")
	assertNothingLeft(t, d)
}
