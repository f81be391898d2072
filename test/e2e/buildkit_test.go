package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// startBuildKitDaemon starts berthd for a BuildKit test, with busybox
// pulled from a registry of the test's: it returns the image's reference.
func startBuildKitDaemon(t *testing.T) (*daemon, string) {
	t.Helper()
	requireCNI(t)
	fixtures.RequireBinary(t, "docker")
	buildxBin(t)
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	fixtures.RemoveCgroupOnCleanup(t, "/berth-build") // BuildKit's steps' parent
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	mustDocker(t, d, "pull", "-q", ref)
	return d, ref
}

// pluginConfig is a docker CLI config directory with buildx as its plugin.
func pluginConfig(t *testing.T) string {
	t.Helper()
	cfg := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cfg, "cli-plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(buildxBin(t), filepath.Join(cfg, "cli-plugins", "docker-buildx")); err != nil {
		t.Fatal(err)
	}
	return cfg
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

// TestBuildKit: buildx's docker driver builds on berthd's BuildKit what
// today's Dockerfiles ask, and the images are at once berthd's (docker run
// runs them): RUN and COPY, a heredoc, a cache mount whose contents the
// next build's step finds, a secret that no file of the image holds, two
// stages that run at once (each waits for the other), FROM scratch with
// --output type=local, ADD of a tar (unpacked), and a cache exported to a
// directory that a build after `buildx prune` takes its steps from.
// The same builds run on Debian's dockerd (20.10) when it is installed, but
// for what its BuildKit lacks (heredocs; cache export by the docker driver).
func TestBuildKit(t *testing.T) {
	d, ref := startBuildKitDaemon(t)
	daemons := []struct {
		name, sock string
		dockerd    bool
	}{{"berthd", d.dockerSocket(), false}}
	if _, err := exec.LookPath("dockerd"); err == nil && os.Getenv("BERTH_SKIP_DOCKERD") == "" {
		daemons = append(daemons, struct {
			name, sock string
			dockerd    bool
		}{"dockerd", startDockerd(t), true})
		fixtures.RemoveCgroupOnCleanup(t, "/buildkit") // dockerd's BuildKit's
	}
	for _, dm := range daemons {
		t.Run(dm.name, func(t *testing.T) {
			docker := func(t *testing.T, args ...string) string {
				t.Helper()
				cmd := exec.Command("docker", args...)
				cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+dm.sock, "DOCKER_CONFIG="+t.TempDir())
				return mustRun(t, cmd)
			}
			build := func(t *testing.T, dir string, args ...string) string {
				t.Helper()
				if dm.dockerd {
					// dockerd runs with --bridge=none: it must not touch the host's network.
					args = append([]string{"--network", "none"}, args...)
				}
				cmd := buildxCmd(t, dm.sock, append(append([]string{"build", "--progress=plain"}, args...), dir)...)
				var out strings.Builder
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					t.Fatalf("buildx build %v: %v\n%s", args, err, out.String())
				}
				return out.String()
			}
			docker(t, "pull", "-q", ref)
			from := "FROM " + ref + "\n"

			t.Run("run-copy", func(t *testing.T) {
				dir := writeContext(t, map[string]string{"greet.txt": "greeting\n", "Dockerfile": from +
					"RUN echo built-by-run > /run.txt\nCOPY greet.txt /greet.txt\nCMD [\"cat\", \"/run.txt\", \"/greet.txt\"]\n"})
				build(t, dir, "-t", "bk:1")
				if got := docker(t, "run", "--rm", "bk:1"); got != "built-by-run\ngreeting\n" {
					t.Errorf("the built image's CMD printed %q", got)
				}
				if got := docker(t, "images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(got, "bk:1") {
					t.Errorf("docker images does not list bk:1:\n%s", got)
				}
			})
			t.Run("heredoc", func(t *testing.T) {
				if dm.dockerd {
					t.Skip("dockerd 20.10's Dockerfile frontend predates heredocs (1.4)")
				}
				dir := writeContext(t, map[string]string{"Dockerfile": from + "RUN <<EOT\necho line1 > /h.txt\necho line2 >> /h.txt\nEOT\n"})
				build(t, dir, "-t", "bk:heredoc")
				if got := docker(t, "run", "--rm", "bk:heredoc", "cat", "/h.txt"); got != "line1\nline2\n" {
					t.Errorf("the heredoc's script wrote %q", got)
				}
			})
			t.Run("cache-mount", func(t *testing.T) {
				dir := writeContext(t, map[string]string{"Dockerfile": from + "ARG N\n" +
					"RUN --mount=type=cache,id=pkgs,target=/cache sh -c 'if [ -f /cache/pkg ]; then echo CACHE-HIT; else echo CACHE-MISS; echo pkg > /cache/pkg; fi; echo $N > /n'\n"})
				first := build(t, dir, "--build-arg", "N=1", "-t", "bk:cache")
				second := build(t, dir, "--build-arg", "N=2", "-t", "bk:cache")
				if !strings.Contains(first, "CACHE-MISS") || !strings.Contains(second, "CACHE-HIT") {
					t.Errorf("the cache mount did not keep the first build's file for the second:\nfirst:\n%s\nsecond:\n%s", first, second)
				}
				if got := docker(t, "run", "--rm", "bk:cache", "sh", "-c", "cat /n; find /cache -type f 2>/dev/null | wc -l"); got != "2\n0\n" {
					t.Errorf("the image holds %q: the second build's /n, and nothing of the cache mount", got)
				}
			})
			t.Run("secret", func(t *testing.T) {
				dir := writeContext(t, map[string]string{"Dockerfile": from +
					"RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len && cat /run/secrets/tok | tr a-z A-Z > /upper\n"})
				src := filepath.Join(t.TempDir(), "tok")
				if err := os.WriteFile(src, []byte("s3cr3t-value"), 0o600); err != nil {
					t.Fatal(err)
				}
				build(t, dir, "--secret", "id=tok,src="+src, "-t", "bk:secret")
				got := docker(t, "run", "--rm", "bk:secret", "sh", "-c", "cat /len /upper; echo; ls /run/secrets 2>/dev/null | wc -l; find / -xdev -type f -not -path '/bin/*' | xargs grep -l s3cr3t-value 2>/dev/null | wc -l")
				if got != "12\nS3CR3T-VALUE\n0\n0\n" {
					t.Errorf("want the step to have read the secret (12 bytes) and no file of the image to hold it; got %q", got)
				}
			})
			t.Run("parallel-stages", func(t *testing.T) {
				// Each stage marks itself in a shared cache mount and waits
				// (30 s at most) for the other's mark: run one after the other,
				// the first would give up.
				wait := func(me, other string) string {
					return "FROM " + ref + " AS " + me + "\nARG T\nRUN --mount=type=cache,id=rendezvous,target=/rv,sharing=shared sh -c " +
						"'touch /rv/" + me + "-$T; i=0; while [ ! -e /rv/" + other + "-$T ]; do i=$((i+1)); [ $i -gt 300 ] && exit 7; sleep 0.1; done; echo " + me + " > /" + me + "'\n"
				}
				dir := writeContext(t, map[string]string{"Dockerfile": wait("a", "b") + wait("b", "a") + from +
					"COPY --from=a /a /a\nCOPY --from=b /b /b\n"})
				build(t, dir, "--build-arg", "T="+strings.ReplaceAll(t.Name(), "/", "-")+randomSuffix(), "-t", "bk:parallel")
				if got := docker(t, "run", "--rm", "bk:parallel", "cat", "/a", "/b"); got != "a\nb\n" {
					t.Errorf("the final stage has %q", got)
				}
			})
			t.Run("scratch-output-local", func(t *testing.T) {
				dir := writeContext(t, map[string]string{"f.txt": "from scratch\n", "Dockerfile": "FROM scratch\nCOPY f.txt /out/f.txt\n"})
				dest := t.TempDir()
				build(t, dir, "--output", "type=local,dest="+dest)
				if b, err := os.ReadFile(filepath.Join(dest, "out", "f.txt")); err != nil || string(b) != "from scratch\n" {
					t.Errorf("--output type=local wrote %q, %v", b, err)
				}
				build(t, dir, "-t", "bk:scratch")
				if got := strings.TrimSpace(docker(t, "image", "inspect", "-f", "{{len .RootFS.Layers}}", "bk:scratch")); got != "1" {
					t.Errorf("FROM scratch + COPY made %s layers, want 1", got)
				}
			})
			t.Run("add-tar", func(t *testing.T) {
				dir := writeContext(t, map[string]string{"Dockerfile": from + "ADD files.tar /x/\n"})
				inner := writeContext(t, map[string]string{"inside.txt": "in the tar\n"})
				mustRun(t, exec.Command("tar", "-C", inner, "-cf", filepath.Join(dir, "files.tar"), "inside.txt"))
				build(t, dir, "-t", "bk:addtar")
				if got := docker(t, "run", "--rm", "bk:addtar", "cat", "/x/inside.txt"); got != "in the tar\n" {
					t.Errorf("ADD of a tar left %q", got)
				}
			})
			t.Run("cache-to-from-local", func(t *testing.T) {
				if dm.dockerd {
					t.Skip("buildx's docker driver exports no cache from dockerd's graphdriver store")
				}
				dir := writeContext(t, map[string]string{"Dockerfile": from + "RUN echo expensive-" + randomSuffix() + " > /e\n"})
				cache := t.TempDir()
				build(t, dir, "--cache-to", "type=local,dest="+cache, "-t", "bk:exported")
				mustRun(t, buildxCmd(t, dm.sock, "prune", "-af"))
				out := build(t, dir, "--cache-from", "type=local,src="+cache, "-t", "bk:imported")
				step := regexp.MustCompile(`(?m)^(#\d+) \[2/2\] RUN echo expensive`).FindStringSubmatch(out)
				if step == nil || !strings.Contains(out, step[1]+" CACHED") {
					t.Errorf("after prune, the build did not take its RUN step from the exported cache:\n%s", out)
				}
			})
			t.Run("docker-build", func(t *testing.T) {
				// The docker CLI's own build: buildx as its plugin, in this
				// test's config directory only.
				cfg := pluginConfig(t)
				dir := writeContext(t, map[string]string{"Dockerfile": from + "RUN echo via-docker-build > /d\n"})
				args := []string{"build", "--progress=plain", "-t", "bk:docker-build", dir}
				if dm.dockerd {
					args = append([]string{"build", "--network", "none"}, args[1:]...)
				}
				cmd := exec.Command("docker", args...)
				cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+dm.sock, "DOCKER_CONFIG="+cfg, "BUILDX_NO_DEFAULT_ATTESTATIONS=1")
				out := mustRun(t, cmd)
				if got := docker(t, "run", "--rm", "bk:docker-build", "cat", "/d"); got != "via-docker-build\n" {
					t.Errorf("docker build's image has %q\n%s", got, out)
				}
			})
			t.Run("cli-20.10", func(t *testing.T) {
				// Debian's docker CLI 20.10 builds with BuildKit through
				// /build?version=2 when /_ping says Builder-Version 2: the
				// context in its session, or uploaded from stdin by a request
				// of its own; the SDKs send it in the body with no session.
				cli, err := dockerCLI2010()
				if err != nil {
					t.Skip(err)
				}
				net := []string{}
				if dm.dockerd {
					net = []string{"--network", "none"}
				}
				cli20 := func(t *testing.T, stdin io.Reader, args ...string) (string, int) {
					t.Helper()
					cmd := exec.Command(cli, append(append([]string{"build", "--progress=plain"}, net...), args...)...)
					cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+dm.sock, "DOCKER_CONFIG="+t.TempDir(), "DOCKER_BUILDKIT=1")
					cmd.Stdin = stdin
					out, _ := cmd.CombinedOutput()
					return string(out), cmd.ProcessState.ExitCode()
				}
				dir := writeContext(t, map[string]string{"greet.txt": "hi from 20.10\n", "Dockerfile": from +
					"RUN echo run-by-20.10 > /r\nCOPY greet.txt /g\nCMD [\"cat\", \"/r\", \"/g\"]\n"})
				iid := filepath.Join(t.TempDir(), "iid")
				if out, code := cli20(t, nil, "--iidfile", iid, "-t", "bk:cli20", dir); code != 0 || !strings.Contains(out, "RUN echo run-by-20.10") {
					t.Fatalf("docker 20.10 build: exit %d, want 0 and BuildKit's steps:\n%s", code, out)
				}
				if got := docker(t, "run", "--rm", "bk:cli20"); got != "run-by-20.10\nhi from 20.10\n" {
					t.Errorf("the image docker 20.10 built printed %q", got)
				}
				if b, _ := os.ReadFile(iid); string(b) != strings.TrimSpace(docker(t, "image", "inspect", "-f", "{{.Id}}", "bk:cli20")) {
					t.Errorf("--iidfile holds %q, not the image's ID", b)
				}

				tarOf := func(dir string) string { return mustRun(t, exec.Command("tar", "-C", dir, "-cf", "-", ".")) }
				if out, code := cli20(t, strings.NewReader(tarOf(dir)), "-t", "bk:cli20-stdin", "-"); code != 0 {
					t.Fatalf("docker 20.10 build - < context.tar: exit %d\n%s", code, out)
				}
				if got := docker(t, "run", "--rm", "bk:cli20-stdin", "cat", "/g"); got != "hi from 20.10\n" {
					t.Errorf("the image built from stdin's context has %q", got)
				}

				scratch := writeContext(t, map[string]string{"f.txt": "exported\n", "Dockerfile": "FROM scratch\nCOPY f.txt /f.txt\n"})
				dest := t.TempDir()
				if out, code := cli20(t, nil, "-o", "type=local,dest="+dest, scratch); code != 0 {
					t.Fatalf("docker 20.10 build -o type=local: exit %d\n%s", code, out)
				}
				if b, err := os.ReadFile(filepath.Join(dest, "f.txt")); err != nil || string(b) != "exported\n" {
					t.Errorf("-o type=local wrote %q, %v", b, err)
				}

				failing := writeContext(t, map[string]string{"Dockerfile": from + "RUN exit 3\n"})
				if out, code := cli20(t, nil, failing); code == 0 || !strings.Contains(out, "exit code: 3") {
					t.Errorf("a failing RUN: exit %d; want the step's exit code named:\n%s", code, out)
				}

				query := "/build?version=2&t=bk:sdk&buildargs=" + url.QueryEscape(`{"WHO":"sdk"}`)
				if dm.dockerd {
					query += "&networkmode=none"
				}
				sdk := writeContext(t, map[string]string{"Dockerfile": from + "ARG WHO\nRUN echo built-by-$WHO > /w\n"})
				code, body := dockerAPIAt(t, dm.sock, "POST", query, tarOf(sdk))
				if code != 200 || !strings.Contains(body, `"moby.image.id"`) || !strings.Contains(body, `"moby.buildkit.trace"`) {
					t.Fatalf("POST %s with the context in the body: %d\n%s", query, code, body)
				}
				if got := docker(t, "run", "--rm", "bk:sdk", "cat", "/w"); got != "built-by-sdk\n" {
					t.Errorf("the SDK-style build's image has %q", got)
				}
				// dockerd answers 500 for it.
				if code, body := dockerAPIAt(t, dm.sock, "POST", "/build?version=2&networkmode=container:x", tarOf(sdk)); !dm.dockerd && (code != 400 || !strings.Contains(body, `"message"`)) {
					t.Errorf("a network mode BuildKit cannot run: %d %s, want 400 with Docker's error JSON", code, body)
				}
			})
			t.Run("error-line", func(t *testing.T) {
				dir := writeContext(t, map[string]string{"Dockerfile": from + "RUN echo fine\nRUN exit 3\n"})
				args := []string{"build", "--progress=plain", dir}
				if dm.dockerd {
					args = append([]string{"build", "--network", "none"}, args[1:]...)
				}
				out, errOut, code := runCLI(t, buildxCmd(t, dm.sock, args...))
				// dockerd 20.10's frontend names no Dockerfile line.
				lines := dm.dockerd || strings.Contains(errOut, "Dockerfile:3") && strings.Contains(errOut, ">>> RUN exit 3")
				if code == 0 || !lines || !strings.Contains(errOut, "exit code: 3") {
					t.Errorf("a failing RUN: exit %d; want the Dockerfile's line 3 and the step's exit code named:\n%s%s", code, out, errOut)
				}
			})
			t.Run("compose-build", func(t *testing.T) {
				compose := os.Getenv("BERTH_COMPOSE")
				if compose == "" {
					compose = "/var/cache/berth-compose/v5.6.0/docker-compose"
				}
				if _, err := os.Stat(compose); err != nil {
					t.Skipf("Compose is not built (make buildx): %v", err)
				}
				network := ""
				if dm.dockerd {
					network = "      network: none\n"
				}
				dir := writeContext(t, map[string]string{
					"web/Dockerfile": from + "RUN echo web > /who\nCMD [\"cat\", \"/who\"]\n",
					"api/Dockerfile": from + "ARG GREETING\nRUN echo \"api $GREETING\" > /who\nCMD [\"cat\", \"/who\"]\n",
					"compose.yaml": "services:\n  web:\n    build:\n      context: web\n" + network + "    image: bkdemo-web:1\n" +
						"  api:\n    build:\n      context: api\n" + network + "      args:\n        GREETING: hello\n    image: bkdemo-api:1\n",
				})
				cfg := pluginConfig(t)
				cmd := exec.Command(compose, "--project-directory", dir, "-p", "bkdemo", "build")
				cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+dm.sock, "DOCKER_CONFIG="+cfg, "BUILDX_NO_DEFAULT_ATTESTATIONS=1")
				mustRun(t, cmd)
				for img, want := range map[string]string{"bkdemo-web:1": "web\n", "bkdemo-api:1": "api hello\n"} {
					if got := docker(t, "run", "--rm", img); got != want {
						t.Errorf("%s printed %q, want %q", img, got, want)
					}
				}
			})
			t.Run("df-prune", func(t *testing.T) {
				count := func() string {
					for _, l := range strings.Split(docker(t, "system", "df", "--format", "{{.Type}}={{.TotalCount}}"), "\n") {
						if v, ok := strings.CutPrefix(l, "Build Cache="); ok {
							return v
						}
					}
					return ""
				}
				if n := count(); n == "0" || n == "" {
					t.Errorf("docker system df counts %q build cache records after the builds above", n)
				}
				types := func() map[string]int {
					_, body := dockerAPIAt(t, dm.sock, "GET", "/system/df", "")
					var df struct{ BuildCache []struct{ Type string } }
					if err := json.Unmarshal([]byte(body), &df); err != nil {
						t.Fatalf("/system/df: %v\n%s", err, body)
					}
					n := map[string]int{}
					for _, c := range df.BuildCache {
						n[c.Type]++
					}
					return n
				}
				// A cache mount of its own: cache-to-from-local pruned the others.
				build(t, writeContext(t, map[string]string{"Dockerfile": from + "RUN --mount=type=cache,id=df-prune,target=/c touch /c/f && echo " + randomSuffix() + "\n"}))
				before := types()
				docker(t, "builder", "prune", "-af", "--filter", "type=exec.cachemount")
				after := types()
				if before["exec.cachemount"] == 0 || after["exec.cachemount"] != 0 || after["regular"] != before["regular"] {
					t.Errorf("prune --filter type=exec.cachemount: records by type %v before, %v after; want the cache mounts gone, the layers kept", before, after)
				}
				out := docker(t, "builder", "prune", "-af")
				if !strings.Contains(out, "Total") {
					t.Errorf("docker builder prune -af printed %q", out)
				}
				if n := count(); n != "0" {
					t.Errorf("docker system df counts %s build cache records after docker builder prune -af", n)
				}
			})
		})
	}
}

// dockerCLI2010 is Debian's docker CLI 20.10 (docker.io), the last that
// builds with BuildKit itself, through /build?version=2.
func dockerCLI2010() (string, error) {
	const cli = "/usr/bin/docker"
	if v, err := exec.Command(cli, "--version").Output(); err != nil || !strings.Contains(string(v), " 20.10") {
		return "", fmt.Errorf("%s is not the docker CLI 20.10 (Debian's docker.io): %s %v", cli, v, err)
	}
	return cli, nil
}

// randomSuffix makes a step's text new to every cache.
func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// TestBuildKitCancel: a build whose client goes away (buildx killed) mid-RUN
// leaves no step running, no mount and no pod; a berthd killed mid-RUN
// leaves the step to the next berthd's start, which removes it and its
// mounts, while the images built before stay.
func TestBuildKitCancel(t *testing.T) {
	d, ref := startBuildKitDaemon(t)
	executor := filepath.Join(d.root, "buildkit", "executor")
	buildPods := func() int {
		ents, _ := os.ReadDir(filepath.Join(d.state, "sandboxes"))
		return len(ents)
	}
	run := func(marker string) *exec.Cmd {
		dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + ref + "\nRUN sleep 3600; echo " + marker + "\n"})
		cmd := buildxCmd(t, d.dockerSocket(), "build", "--progress=plain", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		waitFor(t, "the RUN step to start", func() bool { return len(processesMentioning(marker)) > 0 })
		return cmd
	}

	before := buildPods()
	marker := "cancel-" + randomSuffix()
	cmd := run(marker)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	waitFor(t, "the step to be stopped after its client left", func() bool { return len(processesMentioning(marker)) == 0 })
	// Its pod goes back to the pool (TestBuildKitPodPool), no further.
	waitFor(t, "the step's mounts to go", func() bool { return len(mountsUnder(executor)) == 0 && buildPods() <= before+1 })

	// The docker CLI 20.10's Ctrl-C: POST /build/cancel, then it leaves.
	if cli, err := dockerCLI2010(); err == nil {
		marker := "cli20-cancel-" + randomSuffix()
		cmd := exec.Command(cli, "build", "--progress=plain", writeContext(t, map[string]string{"Dockerfile": "FROM " + ref + "\nRUN sleep 3600; echo " + marker + "\n"}))
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.dockerSocket(), "DOCKER_CONFIG="+t.TempDir(), "DOCKER_BUILDKIT=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		waitFor(t, "the 20.10 CLI's RUN step to start", func() bool { return len(processesMentioning(marker)) > 0 })
		_ = cmd.Process.Signal(os.Interrupt)
		waitFor(t, "the step to be stopped after the 20.10 CLI's Ctrl-C", func() bool { return len(processesMentioning(marker)) == 0 })
		waitFor(t, "its mounts to go", func() bool { return len(mountsUnder(executor)) == 0 && buildPods() <= before+1 })
	} else {
		t.Log(err)
	}

	mustRun(t, buildxCmd(t, d.dockerSocket(), "build", "-t", "kept:1", writeContext(t, map[string]string{"Dockerfile": "FROM " + ref + "\nRUN echo kept > /k\n"})))
	marker = "crash-" + randomSuffix()
	run(marker)
	d.kill()
	if len(processesMentioning(marker)) == 0 {
		t.Log("the step died with berthd")
	}
	d.start(fixtures.Binaries(t))
	waitFor(t, "the restarted berthd to remove the step", func() bool { return len(processesMentioning(marker)) == 0 })
	// The sweep runs once the CRI socket answers, beside the Docker API's start.
	waitFor(t, "the restarted berthd to unmount the step's root filesystem", func() bool { return len(mountsUnder(executor)) == 0 })
	waitFor(t, "the step's pod to go", func() bool { return buildPods() == before })
	if got := mustDocker(t, d, "run", "--rm", "kept:1", "cat", "/k"); got != "kept\n" {
		t.Errorf("the image built before the crash: %q", got)
	}

	// The cache's index is not synced (builder/buildkit/cacheindex.go): when
	// a power cut damaged it, the cache starts empty and builds go on (over
	// BuildKit's records of the old cache, the FROM step's snapshot was
	// missing: "parent snapshot ... does not exist").
	d.kill()
	index := filepath.Join(d.root, "buildkit", "containerdmeta.db")
	if err := os.WriteFile(index, bytes.Repeat([]byte("torn page "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	d.start(fixtures.Binaries(t))
	mustRun(t, buildxCmd(t, d.dockerSocket(), "build", "-t", "after:1", writeContext(t, map[string]string{"Dockerfile": "FROM " + ref + "\nRUN echo after > /a\n"})))
	if got := mustDocker(t, d, "run", "--rm", "after:1", "cat", "/a"); got != "after\n" {
		t.Errorf("the image built over a damaged cache index: %q", got)
	}
	if got := mustDocker(t, d, "run", "--rm", "kept:1", "cat", "/k"); got != "kept\n" {
		t.Errorf("the image built before the index was damaged: %q", got)
	}
}

// TestBuildKitPodPool: RUN steps on the default network share pooled pods:
// three steps in a row use one pod (each on the CNI network: eth0), which
// waits for the next build and goes when berthd stops.
func TestBuildKitPodPool(t *testing.T) {
	d, ref := startBuildKitDaemon(t)
	pods := func() int {
		ents, _ := os.ReadDir(filepath.Join(d.state, "sandboxes"))
		return len(ents)
	}
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + ref + "\n" + strings.Repeat("RUN grep -q eth0 /proc/net/dev && echo $RANDOM >> /steps\n", 3)})
	mustRun(t, buildxCmd(t, d.dockerSocket(), "build", "-t", "pool:1", dir))
	if n := pods(); n != 1 {
		t.Errorf("three RUN steps in a row left %d pods, want the one they shared", n)
	}
	mustRun(t, buildxCmd(t, d.dockerSocket(), "build", "--no-cache", "-t", "pool:2", dir))
	if n := pods(); n != 1 {
		t.Errorf("a second build left %d pods, want the pooled one", n)
	}
	if got := mustDocker(t, d, "run", "--rm", "pool:2", "wc", "-l", "/steps"); !strings.HasPrefix(got, "3 ") {
		t.Errorf("the steps wrote %q", got)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if n := pods(); n != 0 {
		t.Errorf("berthd stopped and left %d build pods", n)
	}
}

// TestBuildKitIdleStop: BuildKit stops once nothing used it for
// buildkit_idle_stop — not during a step that outlasts it — and gives its
// memory back; the next build starts it again over the same cache.
func TestBuildKitIdleStop(t *testing.T) {
	requireCNI(t)
	fixtures.RequireBinary(t, "docker")
	buildxBin(t)
	d := startDaemonWith(t, "buildkit_idle_stop = \"2s\"\n")
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	fixtures.RemoveCgroupOnCleanup(t, "/berth-build")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	mustDocker(t, d, "pull", "-q", ref)
	stops := func() int {
		b, _ := os.ReadFile(d.logFile)
		return strings.Count(string(b), "BuildKit stopped: idle")
	}
	// RssAnon: the memory berthd made, not the pages of its binary that
	// BuildKit's code touched (the kernel takes those back when it must).
	rssMB := func() float64 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
				var kb float64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				return kb / 1024
			}
		}
		return 0
	}
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + ref + "\nRUN sleep 4 && echo outlasted > /o\n"})
	before := rssMB()
	mustRun(t, buildxCmd(t, d.dockerSocket(), "build", "-t", "idle:1", dir))
	if n := stops(); n != 0 {
		t.Errorf("BuildKit stopped %d times during a 4 s step with a 2 s idle stop", n)
	}
	busy := rssMB()
	waitFor(t, "BuildKit's idle stop", func() bool { return stops() == 1 })
	idle := rssMB()
	t.Logf("berthd's anonymous RSS before the build %.1f MB, after it %.1f MB, after BuildKit's idle stop %.1f MB", before, busy, idle)
	if idle >= busy {
		t.Errorf("berthd's anonymous RSS did not fall when BuildKit stopped: %.1f → %.1f MB", busy, idle)
	}
	// While BuildKit is stopped, df answers with the cache it had when it
	// stopped, without starting it again.
	starts := func() int {
		b, _ := os.ReadFile(d.logFile)
		return strings.Count(string(b), "BuildKit started")
	}
	started := starts()
	if df := mustDocker(t, d, "system", "df", "-v", "--format", "{{json .BuildCache}}"); !strings.Contains(df, "sleep 4") {
		t.Errorf("docker system df -v after BuildKit's idle stop lists no RUN step's cache record: %s", df)
	}
	if n := starts(); n != started {
		t.Errorf("docker system df started BuildKit after its idle stop (%d starts, then %d)", started, n)
	}
	out := buildxCmd(t, d.dockerSocket(), "build", "--progress=plain", "-t", "idle:2", dir)
	var b strings.Builder
	out.Stdout, out.Stderr = &b, &b
	if err := out.Run(); err != nil {
		t.Fatalf("the build after the idle stop: %v\n%s", err, b.String())
	}
	if !regexp.MustCompile(`(?m)^#\d+ CACHED`).MatchString(b.String()) {
		t.Errorf("the build after the idle stop did not find the cache:\n%s", b.String())
	}
	if got := mustDocker(t, d, "run", "--rm", "idle:2", "cat", "/o"); got != "outlasted\n" {
		t.Errorf("the image built after the idle stop has %q", got)
	}
}
