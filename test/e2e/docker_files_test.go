package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestDockerFiles: docker diff, export and cp. cp reaches a running
// container's volumes, works on a stopped one, copies directories both
// ways and never follows a link in the container out to the host's files.
func TestDockerFiles(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	fixtures.RequireBinary(t, "tar")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	mustDocker(t, d, "pull", ref)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "secret"), []byte("the host's\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, d, "run", "-d", "--name", "files", "-v", "vol:/vol", ref, "sleep", "600")
	mustDocker(t, d, "exec", "files", "sh", "-c", "echo new > /etc/added; rm /etc/group; echo in volume > /vol/v; ln -s "+host+" /tmp/esc")

	out := mustDocker(t, d, "diff", "files")
	for _, want := range []string{"C /etc\n", "A /etc/added\n", "D /etc/group\n", "A /tmp/esc\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker diff: no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "/vol") {
		t.Errorf("docker diff lists the volume's files:\n%s", out)
	}

	dst := t.TempDir()
	mustDocker(t, d, "cp", "files:/etc/added", dst)
	mustDocker(t, d, "cp", "files:/vol/v", dst)
	for file, want := range map[string]string{"added": "new\n", "v": "in volume\n"} {
		if b, _ := os.ReadFile(filepath.Join(dst, file)); string(b) != want {
			t.Errorf("docker cp of %s: %q, want %q", file, b, want)
		}
	}
	if _, errOut, code := dockerCLI(t, d, "cp", "files:/tmp/esc/secret", dst); code == 0 || strings.Contains(errOut, "the host's") {
		t.Errorf("cp through a link to a host directory: exit %d %q (the host's file must not be reached)", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dst, "secret")); err == nil {
		t.Error("cp through a link in the container copied the host's file")
	}
	src := filepath.Join(t.TempDir(), "tree")
	_ = os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	_ = os.WriteFile(filepath.Join(src, "sub", "leaf"), []byte("leaf\n"), 0o644)
	mustDocker(t, d, "cp", src, "files:/tmp/")
	if out := mustDocker(t, d, "exec", "files", "cat", "/tmp/tree/sub/leaf"); out != "leaf\n" {
		t.Errorf("a directory copied in: %q", out)
	}
	if out := strings.TrimSpace(mustDocker(t, d, "exec", "files", "stat", "-c", "%u", "/tmp/tree/sub/leaf")); out != "0" {
		t.Errorf("a file copied in belongs to uid %s, want the container's root", out)
	}
	// Archives put (as SDKs do) into the container's root, which for a
	// running container is a link (/proc/PID/root), and through a link to
	// a directory inside it; a link out of it reaches nothing of the host's.
	mustDocker(t, d, "exec", "files", "sh", "-c", "mkdir -p /srv/data && ln -s /srv/data /tmp/todata")
	for path, want := range map[string]string{"/": "/at-root", "/tmp/todata": "/srv/data/at-root"} {
		if status, body := dockerAPI(t, d, "PUT", "/containers/files/archive?path="+path, string(tarOf(t, map[string]string{"at-root": "put\n"}))); status != 200 {
			t.Fatalf("PUT archive into %s: %d %s", path, status, body)
		}
		if out := mustDocker(t, d, "exec", "files", "cat", want); out != "put\n" {
			t.Errorf("archive put into %s: %s holds %q", path, want, out)
		}
	}
	if status, _ := dockerAPI(t, d, "PUT", "/containers/files/archive?path=/tmp/esc", string(tarOf(t, map[string]string{"planted": "x\n"}))); status == 200 {
		t.Errorf("PUT archive through a link to a host path succeeded")
	}
	if _, err := os.Stat(filepath.Join(host, "planted")); err == nil {
		t.Fatal("an archive put through a link in the container landed in the host's directory")
	}
	if _, errOut, code := dockerCLI(t, d, "cp", "files:/no/such", dst); code == 0 || !strings.Contains(errOut, "Could not find") {
		t.Errorf("cp of a missing path: exit %d %q", code, errOut)
	}

	tarFile := filepath.Join(t.TempDir(), "f.tar")
	mustDocker(t, d, "export", "-o", tarFile, "files")
	list, err := exec.Command("tar", "-tf", tarFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	if l := string(list); !strings.Contains(l, "bin/busybox") || !strings.Contains(l, "etc/added") || strings.Contains(l, "etc/group") || strings.Contains(l, "vol/v") {
		t.Errorf("docker export lists:\n%s", l)
	}

	mustDocker(t, d, "stop", "-t", "1", "files")
	mustDocker(t, d, "cp", "files:/etc/added", filepath.Join(dst, "again"))
	if b, _ := os.ReadFile(filepath.Join(dst, "again")); string(b) != "new\n" {
		t.Errorf("cp from a stopped container: %q", b)
	}
	mustDocker(t, d, "rm", "files")
	mustDocker(t, d, "volume", "rm", "vol")
	assertNothingLeft(t, d)
}

// TestDockerCommit: docker commit makes an image of a container's changes
// (a new file, a deletion) with --change, -m and -a, that runs; a bad
// change is refused.
func TestDockerCommit(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	mustDocker(t, d, "pull", ref)
	mustDocker(t, d, "run", "--name", "src", ref, "sh", "-c", "echo data > /data.txt; rm /etc/group")
	id := strings.TrimSpace(mustDocker(t, d, "commit", "-c", `CMD ["cat", "/data.txt"]`, "-c", "ENV X=1", "-m", "made by a test", "-a", "tester", "src", "committed:v1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("docker commit printed %q", id)
	}
	if out := mustDocker(t, d, "run", "--rm", "committed:v1"); out != "data\n" {
		t.Errorf("the committed image's CMD: %q", out)
	}
	if out := mustDocker(t, d, "run", "--rm", "committed:v1", "sh", "-c", "test -e /etc/group || echo gone; echo $X"); out != "gone\n1\n" {
		t.Errorf("the committed image's deletion and env: %q", out)
	}
	if out := mustDocker(t, d, "image", "inspect", "-f", "{{.Author}}", "committed:v1"); strings.TrimSpace(out) != "tester" {
		t.Errorf("author: %q", out)
	}
	if out := mustDocker(t, d, "history", "--format", "{{.Comment}}", "committed:v1"); !strings.HasPrefix(out, "made by a test") {
		t.Errorf("history: %q", out)
	}
	if _, errOut, code := dockerCLI(t, d, "commit", "-c", "RUN echo", "src", "bad:1"); code == 0 || !strings.Contains(errOut, "RUN") {
		t.Errorf("commit with a RUN change: exit %d %q", code, errOut)
	}
	mustDocker(t, d, "rm", "src")
	mustDocker(t, d, "rmi", "committed:v1")
	assertNothingLeft(t, d)
}

// TestDockerPushLogin: docker login checks credentials against the
// registry (a wrong password is refused), docker push uploads an image the
// registry then serves, with the credentials the CLI keeps after login
// (X-Registry-Auth) on push and pull; without them the registry refuses.
func TestDockerPushLogin(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	backend := fixtures.Registry(t)
	ref := fixtures.PushBusybox(t, backend)
	front := fixtures.Front(t, backend, nil, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if u, p, ok := r.BasicAuth(); !ok || u != "berth" || p != "secret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
	config := t.TempDir() // the CLI keeps its login here, across commands
	docker := func(args ...string) (string, string, int) {
		cmd := dockerCmd(t, d, args...)
		cmd.Env = append(cmd.Env, "DOCKER_CONFIG="+config)
		return runCLI(t, cmd)
	}
	mustDocker(t, d, "pull", ref)
	if _, errOut, code := docker("login", "-u", "berth", "-p", "wrong", front); code == 0 || !strings.Contains(errOut, "unauthorized") {
		t.Errorf("login with a wrong password: exit %d %q", code, errOut)
	}
	if out, errOut, code := docker("login", "-u", "berth", "-p", "secret", front); code != 0 || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: exit %d %q %q", code, out, errOut)
	}
	target := front + "/library/pushed:1"
	mustDocker(t, d, "tag", ref, target)
	if out, errOut, code := docker("push", target); code != 0 || !strings.Contains(out, "digest: sha256:") {
		t.Fatalf("push: exit %d %q %q", code, out, errOut)
	}
	mustDocker(t, d, "rmi", target)
	if out, errOut, code := docker("pull", target); code != 0 || !strings.Contains(out, "Digest: sha256:") {
		t.Errorf("pull of the pushed image with the login's credentials: exit %d %q %q", code, out, errOut)
	}
	mustDocker(t, d, "rmi", target)
	if _, _, code := dockerCLI(t, d, "pull", target); code == 0 {
		t.Error("a pull without credentials from a registry that wants them succeeded")
	}
	// berth keeps its login where the docker CLI does, and sends it on push and pull.
	berthConfig := t.TempDir()
	berth := func(args ...string) (string, string, int) {
		cmd := berthCmd(t, d, args...)
		cmd.Env = append(cmd.Env, "DOCKER_CONFIG="+berthConfig)
		return runCLI(t, cmd)
	}
	if _, _, code := berth("login", "-u", "berth", "-p", "wrong", front); code == 0 {
		t.Error("berth login with a wrong password succeeded")
	}
	if out, errOut, code := berth("login", "-u", "berth", "-p", "secret", front); code != 0 || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("berth login: exit %d %q %q", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(berthConfig, "config.json")); !strings.Contains(string(b), front) {
		t.Errorf("berth login kept nothing for %s in config.json: %s", front, b)
	}
	second := front + "/library/pushed:2"
	mustDocker(t, d, "tag", ref, second)
	if out, errOut, code := berth("push", second); code != 0 || !strings.Contains(out, "digest: sha256:") {
		t.Errorf("berth push: exit %d %q %q", code, out, errOut)
	}
	mustDocker(t, d, "rmi", second)
	if _, errOut, code := berth("pull", second); code != 0 {
		t.Errorf("berth pull with its login: exit %d %q", code, errOut)
	}
	mustDocker(t, d, "rmi", second)
	berth("logout", front)
	if _, _, code := berth("pull", second); code == 0 {
		t.Error("berth pull after logout succeeded")
	}

	// A registry without auth takes a push with none.
	open := backend + "/library/open:1"
	mustDocker(t, d, "tag", ref, open)
	mustDocker(t, d, "push", open)
	if _, _, code := dockerCLI(t, d, "push", backend+"/library/never-tagged:1"); code == 0 {
		t.Error("push of an image not there locally succeeded")
	}
	assertNothingLeft(t, d)
}
