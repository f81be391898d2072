package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/fixtures"
)

// berthCmd is the berth CLI, pointed at d's Docker API socket.
func berthCmd(t *testing.T, d *daemon, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(fixtures.Binaries(t), "berth"), args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.dockerSocket())
	return cmd
}

// berthCLI runs the berth CLI against d and returns what it printed.
func berthCLI(t *testing.T, d *daemon, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLI(t, berthCmd(t, d, args...))
}

func mustBerth(t *testing.T, d *daemon, args ...string) string {
	t.Helper()
	return mustRun(t, berthCmd(t, d, args...))
}

// TestBerthCLI: each verb of the berth CLI against a test berthd, beside
// what the docker CLI prints for the same objects (fields and exit codes,
// not timestamps): pull (and run's own pull), images, run attached (the
// streams apart, the exit code) and detached, ps (its table's columns, and
// templates), exec (-e, its exit code), logs, inspect (-f, a missing
// object), stop, wait, rm, tag, rmi, volumes, networks, and the CRI's pods
// read through its socket. Every command has --help.
func TestBerthCLI(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	host := fixtures.Registry(t)
	ref := fixtures.PushBusybox(t, host)
	other := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Env: []string{"OTHER=1"}}), host, "library/other:1")

	if out := strings.TrimSpace(mustBerth(t, d, "version", "--format", "{{.Server.APIVersion}}")); out != "1.50" {
		t.Errorf("berth version: API %q", out)
	}
	if out := mustBerth(t, d, "pull", ref); !strings.Contains(out, "Digest: sha256:") {
		t.Errorf("berth pull: %q", out)
	}
	format := "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}"
	if b, dk := mustBerth(t, d, "images", "--format", format), mustDocker(t, d, "images", "--format", format); b != dk {
		t.Errorf("images: berth %q, docker %q", b, dk)
	}
	if b, dk := strings.Fields(firstLine(mustBerth(t, d, "images"))), strings.Fields(firstLine(mustDocker(t, d, "images"))); strings.Join(b, " ") != strings.Join(dk, " ") {
		t.Errorf("images header: berth %q, docker %q", b, dk)
	}

	// run: attached (an image pulled on the way), detached.
	out, errOut, code := berthCLI(t, d, "run", "--rm", other, "sh", "-c", "echo out; echo err >&2; exit 3")
	if out != "out\n" || !strings.HasSuffix(errOut, "err\n") || !strings.Contains(errOut, "Unable to find image") || code != 3 {
		t.Errorf("berth run --rm of an image not pulled: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	id := strings.TrimSpace(mustBerth(t, d, "run", "-d", "--name", "web", "-e", "KEEP=k", ref, "sleep", "600"))
	if len(id) != 64 {
		t.Fatalf("berth run -d printed %q", id)
	}
	mustDocker(t, d, "run", "--name", "talk", ref, "sh", "-c", "echo hello; echo oops >&2")
	format = "{{.ID}} {{.Names}} {{.Image}} {{.Command}} {{.State}} {{.Status}}"
	for _, args := range [][]string{{"ps", "--format", format}, {"ps", "-a", "--format", format}, {"ps", "-q"}, {"ps", "-aq", "--no-trunc"}} {
		if b, dk := mustBerth(t, d, args...), mustDocker(t, d, args...); b != dk {
			t.Errorf("%v: berth %q, docker %q", args, b, dk)
		}
	}
	if b, dk := strings.Fields(firstLine(mustBerth(t, d, "ps"))), strings.Fields(firstLine(mustDocker(t, d, "ps"))); strings.Join(b, " ") != strings.Join(dk, " ") {
		t.Errorf("ps header: berth %q, docker %q", b, dk)
	}

	// exec, logs, inspect
	if out := mustBerth(t, d, "exec", "-e", "A=1", "web", "sh", "-c", "echo $A $KEEP"); out != "1 k\n" {
		t.Errorf("berth exec -e: %q", out)
	}
	if _, _, code := berthCLI(t, d, "exec", "web", "sh", "-c", "exit 4"); code != 4 {
		t.Errorf("berth exec of exit 4: exit %d", code)
	}
	bo, be, _ := berthCLI(t, d, "logs", "talk")
	do, de, _ := dockerCLI(t, d, "logs", "talk")
	if bo != do || be != de || bo != "hello\n" {
		t.Errorf("logs: berth %q/%q, docker %q/%q", bo, be, do, de)
	}
	for _, f := range []string{"{{.State.Status}} {{.Name}} {{.Config.Image}}", "{{json .Config.Env}}"} {
		if b, dk := mustBerth(t, d, "inspect", "-f", f, "web"), mustDocker(t, d, "inspect", "-f", f, "web"); b != dk {
			t.Errorf("inspect -f %s: berth %q, docker %q", f, b, dk)
		}
	}
	if _, errOut, code := berthCLI(t, d, "inspect", "nosuch"); code != 1 || !strings.Contains(errOut, "No such object") {
		t.Errorf("berth inspect nosuch: exit %d %q", code, errOut)
	}
	if _, errOut, code := berthCLI(t, d, "run", "--rm", host+"/library/nosuch:1", "true"); code != 125 || errOut == "" {
		t.Errorf("berth run of an image no registry has: exit %d %q, want 125", code, errOut)
	}

	// pause, top, diff, cp both ways, commit, history, save/load, export, build
	mustBerth(t, d, "pause", "web")
	if out := strings.TrimSpace(mustBerth(t, d, "inspect", "-f", "{{.State.Paused}}", "web")); out != "true" {
		t.Errorf("after berth pause: paused %q", out)
	}
	mustBerth(t, d, "unpause", "web")
	if out := mustBerth(t, d, "top", "web"); !strings.Contains(out, "PID") || !strings.Contains(out, "sleep") {
		t.Errorf("berth top: %q", out)
	}
	mustBerth(t, d, "exec", "web", "sh", "-c", "echo inside > /tmp/made")
	if out := mustBerth(t, d, "diff", "web"); !strings.Contains(out, "A /tmp/made") {
		t.Errorf("berth diff: %q", out)
	}
	local := t.TempDir()
	mustBerth(t, d, "cp", "web:/tmp/made", filepath.Join(local, "got"))
	if b, _ := os.ReadFile(filepath.Join(local, "got")); string(b) != "inside\n" {
		t.Errorf("berth cp out: %q", b)
	}
	_ = os.WriteFile(filepath.Join(local, "in.txt"), []byte("from host\n"), 0o644)
	mustBerth(t, d, "cp", filepath.Join(local, "in.txt"), "web:/tmp/")
	if out := mustBerth(t, d, "exec", "web", "cat", "/tmp/in.txt"); out != "from host\n" {
		t.Errorf("berth cp in: %q", out)
	}
	snap := strings.TrimSpace(mustBerth(t, d, "commit", "-m", "snapshot", "web", "snap:1"))
	if !strings.HasPrefix(snap, "sha256:") {
		t.Errorf("berth commit printed %q", snap)
	}
	if out := mustBerth(t, d, "history", "snap:1"); !strings.Contains(out, "snapshot") || !strings.HasPrefix(out, "IMAGE") {
		t.Errorf("berth history: %q", out)
	}
	archiveFile := filepath.Join(local, "snap.tar")
	mustBerth(t, d, "save", "-o", archiveFile, "snap:1")
	mustBerth(t, d, "rmi", "snap:1")
	if out := mustBerth(t, d, "load", "-i", archiveFile); !strings.Contains(out, "Loaded image") {
		t.Errorf("berth load: %q", out)
	}
	if out := mustBerth(t, d, "run", "--rm", "snap:1", "cat", "/tmp/made"); out != "inside\n" {
		t.Errorf("the committed, saved and loaded image: %q", out)
	}
	mustBerth(t, d, "export", "-o", filepath.Join(local, "web.tar"), "web")
	if list, err := exec.Command("tar", "-tf", filepath.Join(local, "web.tar")).Output(); err != nil || !strings.Contains(string(list), "tmp/made") {
		t.Errorf("berth export: %v %q", err, list)
	}
	buildDir := t.TempDir()
	_ = os.WriteFile(filepath.Join(buildDir, "Dockerfile"), []byte("FROM "+ref+"\nCOPY . /ctx\nCMD [\"ls\", \"/ctx\"]\n"), 0o644)
	_ = os.WriteFile(filepath.Join(buildDir, "kept"), nil, 0o644)
	_ = os.WriteFile(filepath.Join(buildDir, "secret"), nil, 0o644)
	_ = os.WriteFile(filepath.Join(buildDir, ".dockerignore"), []byte("secret\n"), 0o644)
	if out := mustBerth(t, d, "build", "-t", "cli-built:1", buildDir); !strings.Contains(out, "Successfully tagged cli-built:1") {
		t.Errorf("berth build: %q", out)
	}
	if out := mustBerth(t, d, "run", "--rm", "cli-built:1"); !strings.Contains(out, "kept") || strings.Contains(out, "secret") {
		t.Errorf("the berth-built image's /ctx: %q (.dockerignore names secret)", out)
	}
	_ = os.WriteFile(filepath.Join(buildDir, "Dockerfile"), []byte("FROM "+ref+"\nRUN exit 4\n"), 0o644)
	if _, errOut, code := berthCLI(t, d, "build", buildDir); code == 0 || !strings.Contains(errOut, "non-zero code: 4") {
		t.Errorf("berth build of a failing RUN: exit %d %q", code, errOut)
	}

	// update, network connect/disconnect, a context, exec -it's resizes, attach
	mustBerth(t, d, "update", "--memory", "64m", "web")
	if out := strings.TrimSpace(mustBerth(t, d, "inspect", "-f", "{{.HostConfig.Memory}}", "web")); out != "67108864" {
		t.Errorf("berth update --memory: %q", out)
	}
	mustBerth(t, d, "network", "create", "side")
	mustBerth(t, d, "network", "connect", "--alias", "w", "side", "web")
	if out := mustBerth(t, d, "exec", "web", "ls", "/sys/class/net"); !strings.Contains(out, "eth1") {
		t.Errorf("berth network connect: interfaces %q", out)
	}
	mustBerth(t, d, "network", "disconnect", "side", "web")
	mustBerth(t, d, "network", "rm", "side")
	cfgDir := t.TempDir()
	sum := sha256.Sum256([]byte("mine"))
	metaDir := filepath.Join(cfgDir, "contexts", "meta", hex.EncodeToString(sum[:]))
	_ = os.MkdirAll(metaDir, 0o755)
	_ = os.WriteFile(filepath.Join(metaDir, "meta.json"), []byte(`{"Name":"mine","Endpoints":{"docker":{"Host":"unix://`+d.dockerSocket()+`"}}}`), 0o644)
	ctxCmd := exec.Command(filepath.Join(fixtures.Binaries(t), "berth"), "--context", "mine", "version", "--format", "{{.Server.APIVersion}}")
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "DOCKER_HOST=") {
			ctxCmd.Env = append(ctxCmd.Env, e)
		}
	}
	ctxCmd.Env = append(ctxCmd.Env, "DOCKER_CONFIG="+cfgDir)
	if out := strings.TrimSpace(mustRun(t, ctxCmd)); out != "1.50" {
		t.Errorf("berth --context mine: %q", out)
	}
	x := startOnPty(t, berthCmd(t, d, "exec", "-it", "web", "sh", "-c", "while :; do stty size; sleep 0.1; done"), 20, 70)
	x.expect("20 70")
	x.resize(30, 90)
	x.expect("30 90")
	x.typeKeys("\x03")
	if code := x.wait(); code != 130 {
		t.Errorf("berth exec -it after ^C: exit %d", code)
	}
	mustBerth(t, d, "run", "-dit", "--name", "shell", ref, "sh")
	at := startOnPty(t, berthCmd(t, d, "attach", "shell"), 24, 80)
	time.Sleep(200 * time.Millisecond)
	at.typeKeys("echo attached $((3*3))\r")
	at.expect("attached 9")
	at.typeKeys("\x10\x11")
	if code := at.wait(); code != 0 {
		t.Errorf("berth attach, detached: exit %d", code)
	}
	mustBerth(t, d, "rm", "-f", "shell")

	// system df, beside the docker CLI's
	if b, dk := mustBerth(t, d, "system", "df"), mustDocker(t, d, "system", "df"); firstLine(b) == "" || strings.Fields(firstLine(b))[0] != "TYPE" ||
		strings.Fields(strings.Split(b, "\n")[1])[1] != strings.Fields(strings.Split(dk, "\n")[1])[1] {
		t.Errorf("system df: berth %q, docker %q", b, dk)
	}

	// stats, events
	if out := mustBerth(t, d, "stats", "--no-stream", "web"); !strings.Contains(out, "CPU %") || !strings.Contains(out, "web") {
		t.Errorf("berth stats: %q", out)
	}
	events := berthCmd(t, d, "events", "--until", strconv.FormatInt(time.Now().Add(3*time.Second).Unix(), 10), "--filter", "type=container")
	var evOut strings.Builder
	events.Stdout = &evOut
	if err := events.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	mustBerth(t, d, "run", "--rm", "--name", "eventful", ref, "true")
	if err := events.Wait(); err != nil {
		t.Errorf("berth events: %v", err)
	}
	for _, want := range []string{"container create", "container start", "container die"} {
		if !strings.Contains(evOut.String(), want) {
			t.Errorf("berth events: no %q in %q", want, evOut.String())
		}
	}

	// -it: a shell on the terminal, its size, its exit code.
	p := startOnPty(t, berthCmd(t, d, "run", "-it", "--rm", ref, "sh"), 27, 99)
	p.expect("# ")
	p.typeKeys("stty size; echo $((2+3))\r")
	p.expect("27 99")
	p.expect("5")
	p.typeKeys("exit 7\r")
	if code := p.wait(); code != 7 {
		t.Errorf("berth run -it, then exit 7: exit %d\n%q", code, p.seen.String())
	}

	// ctrl-p ctrl-q detaches: berth ends with 0, the container runs on.
	q := startOnPty(t, berthCmd(t, d, "run", "-it", "--name", "bg", ref, "sh"), 24, 80)
	q.expect("# ")
	q.typeKeys("\x10\x11")
	if code := q.wait(); code != 0 {
		t.Errorf("berth run -it, detached: exit %d\n%q", code, q.seen.String())
	}
	if out := mustBerth(t, d, "ps", "--filter", "name=bg", "--format", "{{.Status}}"); !strings.HasPrefix(out, "Up") {
		t.Errorf("after the detach bg is %q, want running", out)
	}
	mustBerth(t, d, "rm", "-f", "bg")

	// stop, wait, rm; tag, rmi
	if out := mustBerth(t, d, "stop", "-t", "1", "web"); out != "web\n" {
		t.Errorf("berth stop: %q", out)
	}
	if out := strings.TrimSpace(mustBerth(t, d, "wait", "web")); out != "137" && out != "143" {
		t.Errorf("berth wait: %q", out)
	}
	if _, errOut, code := berthCLI(t, d, "rm", "nosuch"); code != 1 || !strings.Contains(errOut, "No such container") {
		t.Errorf("berth rm nosuch: exit %d %q", code, errOut)
	}
	mustBerth(t, d, "rm", "web", "talk")
	mustBerth(t, d, "tag", ref, "mine:v1")
	if out := mustBerth(t, d, "rmi", "mine:v1"); !strings.Contains(out, "Untagged: mine:v1") {
		t.Errorf("berth rmi of a tag: %q", out)
	}

	// volumes, networks
	mustBerth(t, d, "volume", "create", "data")
	if b, dk := mustBerth(t, d, "volume", "ls", "-q"), mustDocker(t, d, "volume", "ls", "-q"); b != dk || b != "data\n" {
		t.Errorf("volume ls: berth %q docker %q", b, dk)
	}
	if out := mustBerth(t, d, "volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "data"); out != "data local\n" {
		t.Errorf("berth volume inspect: %q", out)
	}
	mustBerth(t, d, "volume", "rm", "data")
	mustBerth(t, d, "network", "create", "clinet")
	format = "{{.Name}} {{.Driver}} {{.Scope}}"
	if b, dk := mustBerth(t, d, "network", "ls", "--format", format), mustDocker(t, d, "network", "ls", "--format", format); b != dk || !strings.Contains(b, "clinet bridge local") {
		t.Errorf("network ls: berth %q docker %q", b, dk)
	}
	if out := mustBerth(t, d, "network", "inspect", "-f", "{{.Name}} {{.Driver}}", "clinet"); out != "clinet bridge\n" {
		t.Errorf("berth network inspect: %q", out)
	}
	mustBerth(t, d, "network", "rm", "clinet")
	// the prunes
	mustBerth(t, d, "create", "--name", "never-started", ref, "true")
	mustBerth(t, d, "network", "create", "unused")
	mustBerth(t, d, "volume", "create", "spare")
	if out := mustBerth(t, d, "container", "prune", "-f"); !strings.Contains(out, "Deleted Containers") {
		t.Errorf("berth container prune: %q", out)
	}
	if out := mustBerth(t, d, "network", "prune", "-f"); !strings.Contains(out, "unused") {
		t.Errorf("berth network prune: %q", out)
	}
	if out := mustBerth(t, d, "volume", "prune", "-f", "-a"); !strings.Contains(out, "spare") {
		t.Errorf("berth volume prune -a: %q", out)
	}
	if _, errOut, code := berthCLI(t, d, "image", "prune"); code == 0 || !strings.Contains(errOut, "-f") {
		t.Errorf("berth image prune without -f: exit %d %q", code, errOut)
	}
	if out := mustBerth(t, d, "image", "prune", "-a", "-f"); !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("berth image prune -a: %q", out)
	}

	// The CRI side, read-only.
	ctx := context.Background()
	// Ports: picked by the daemon (-p PORT, -P with --expose), an IPv6
	// address, read back with berth port as docker port reads them.
	mustBerth(t, d, "run", "-d", "--name", "ports", "-p", "8080", "-p", "127.0.0.1::9090/udp", "-P", "--expose", "7000", ref, "sleep", "600")
	for _, args := range [][]string{{"port", "ports"}, {"port", "ports", "8080"}, {"port", "ports", "9090/udp"}, {"port", "ports", "7000/tcp"}} {
		if b, dk := mustBerth(t, d, args...), mustDocker(t, d, args...); b != dk || b == "" {
			t.Errorf("berth %v: %q, docker %q", args, b, dk)
		}
	}
	if _, errOut, code := berthCLI(t, d, "port", "ports", "1234"); code == 0 || !strings.Contains(errOut, "no public port") {
		t.Errorf("berth port of a port not published: exit %d %q", code, errOut)
	}
	if fixtures.HostIPv6() {
		mustBerth(t, d, "run", "-d", "--name", "ports6", "-p", "[::1]::80", ref, "sleep", "600")
		if out := mustBerth(t, d, "port", "ports6", "80"); !strings.HasPrefix(out, "[::1]:") {
			t.Errorf("berth port of an IPv6 binding: %q", out)
		}
		mustBerth(t, d, "rm", "-f", "ports6")
	}
	mustBerth(t, d, "rm", "-f", "ports")

	pod := podConfig("cli-pod", filepath.Join(d.dir, "pods", "cli-pod"))
	if _, err := d.rs.RunPodSandbox(ctx, pod, ""); err != nil {
		t.Fatal(err)
	}
	if out := mustBerth(t, d, "--cri-socket", "unix://"+d.socket, "pods"); !strings.Contains(out, "cli-pod") || !strings.Contains(out, "READY") {
		t.Errorf("berth pods: %q", out)
	}
	d.removeAllPods()

	for _, c := range []string{"", "run", "ps", "exec", "logs", "pull", "images", "volume", "network", "inspect", "pods", "cp", "build", "commit", "top", "port"} {
		args := append(strings.Fields(c), "--help")
		if out := mustBerth(t, d, args...); !strings.Contains(out, "Usage:") {
			t.Errorf("berth %s --help: %q", c, out)
		}
	}
	assertNothingLeft(t, d)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
