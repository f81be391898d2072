package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/test/fixtures"
)

// TestDockerRunOptions: the options of `docker run` that shape the
// container are honoured inside it — tmpfs (--tmpfs and --mount), ulimits,
// sysctls, --add-host, --dns*, no-new-privileges, a seccomp profile given
// as a file, --group-add, --stop-signal and --stop-timeout — and inspect
// shows them as the client sent them, over the image's config. Bad values
// are refused with Docker's 400 and leave nothing.
func TestDockerRunOptions(t *testing.T) {
	requireCNI(t)
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Env: []string{"FROM_IMAGE=1"}}), fixtures.Registry(t), "library/opts:1")
	mustDocker(t, d, "pull", ref)

	script := strings.Join([]string{
		"grep ' /scratch ' /proc/mounts", "grep ' /t2 ' /proc/mounts",
		"echo nofile $(ulimit -n) $(ulimit -Hn)", "echo forward $(cat /proc/sys/net/ipv4/ip_forward)",
		"grep db /etc/hosts", "cat /etc/resolv.conf", "grep NoNewPrivs /proc/self/status", "id -G",
	}, "; ")
	out := mustDocker(t, d, "run", "--rm", "--tmpfs", "/scratch:size=1m,mode=1700", "--mount", "type=tmpfs,target=/t2,tmpfs-size=2097152",
		"--ulimit", "nofile=512:1024", "--sysctl", "net.ipv4.ip_forward=1", "--add-host", "db:10.1.2.3",
		"--dns", "127.0.0.9", "--dns-search", "example.test", "--dns-option", "ndots:2",
		"--security-opt", "no-new-privileges", "--group-add", "1234", ref, "sh", "-c", script)
	for _, want := range []string{
		"tmpfs /scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1700", "tmpfs /t2 tmpfs rw,nosuid,nodev,noexec,relatime,size=2048k",
		"nofile 512 1024", "forward 1", "10.1.2.3\tdb", "nameserver 127.0.0.9", "search example.test", "options ndots:2",
		"NoNewPrivs:\t1", "1234",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("in the container: no %q in\n%s", want, out)
		}
	}

	// A seccomp profile file: the CLI sends its content.
	profile := filepath.Join(t.TempDir(), "no-mkdir.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := dockerCLI(t, d, "run", "--rm", "--security-opt", "seccomp="+profile, ref, "mkdir", "/x"); code != 1 || !strings.Contains(errOut, "Operation not permitted") {
		t.Errorf("mkdir under a profile that denies it: exit %d, %q", code, errOut)
	}
	mustDocker(t, d, "run", "--rm", "--security-opt", "seccomp=unconfined", ref, "mkdir", "/x")

	// --stop-signal and --stop-timeout: a container that ignores SIGTERM
	// but ends on SIGUSR1 stops at the signal; one that ignores both is
	// killed after its own timeout, not the default 10 s.
	mustDocker(t, d, "run", "-d", "--name", "usr1", "--stop-signal", "SIGUSR1", ref, "sh", "-c", "trap '' TERM; trap 'exit 42' USR1; while :; do sleep 0.1; done")
	mustDocker(t, d, "run", "-d", "--name", "stubborn", "--stop-timeout", "1", ref, "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done")
	mustDocker(t, d, "stop", "usr1")
	if code := strings.TrimSpace(mustDocker(t, d, "inspect", "-f", "{{.State.ExitCode}} {{.Config.StopSignal}}", "usr1")); code != "42 SIGUSR1" {
		t.Errorf("stop with --stop-signal SIGUSR1: %q, want exit 42", code)
	}
	began := time.Now()
	mustDocker(t, d, "stop", "stubborn")
	if took := time.Since(began); took > 8*time.Second {
		t.Errorf("stop of a container with --stop-timeout 1 took %v: the default timeout was used", took)
	}

	// inspect: the request as sent, over the image's config.
	var info []struct {
		Config struct {
			Env         []string
			StopTimeout *int
			Cmd         []string
		}
		HostConfig struct {
			Tmpfs      map[string]string
			ExtraHosts []string
			Ulimits    []struct{ Name string }
		}
		Mounts []struct{ Type, Destination string }
	}
	mustDocker(t, d, "create", "--name", "shown", "--tmpfs", "/run", "--mount", "type=tmpfs,target=/t", "--add-host", "db:10.1.2.3", "--ulimit", "nproc=100", "-e", "MINE=2", "--stop-timeout", "3", ref, "true")
	if err := json.Unmarshal([]byte(mustDocker(t, d, "inspect", "shown")), &info); err != nil || len(info) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	c := info[0]
	if !strings.Contains(strings.Join(c.Config.Env, " "), "FROM_IMAGE=1") || !strings.Contains(strings.Join(c.Config.Env, " "), "MINE=2") ||
		c.Config.StopTimeout == nil || *c.Config.StopTimeout != 3 || len(c.Config.Cmd) == 0 {
		t.Errorf("inspect Config: %+v (want the image's env and cmd under the request's)", c.Config)
	}
	if _, ok := c.HostConfig.Tmpfs["/run"]; !ok || len(c.HostConfig.ExtraHosts) != 1 || len(c.HostConfig.Ulimits) != 1 {
		t.Errorf("inspect HostConfig: %+v", c.HostConfig)
	}
	if len(c.Mounts) != 1 || c.Mounts[0].Type != "tmpfs" || c.Mounts[0].Destination != "/t" { // --tmpfs is not listed, as in dockerd
		t.Errorf("inspect Mounts: %+v", c.Mounts)
	}

	// Refused before anything is made.
	before := mustDocker(t, d, "ps", "-aq")
	for _, bad := range [][]string{
		{"--add-host", "db:not-an-ip"}, {"--dns", "nowhere"}, {"--security-opt", "bogus=1"},
		{"--tmpfs", "relative"}, {"--stop-signal", "SIGNOPE"}, {"--mount", "type=bind,source=/no/such/dir,target=/x"},
	} {
		args := append(append([]string{"create"}, bad...), ref)
		if _, errOut, code := dockerCLI(t, d, args...); code == 0 || !strings.Contains(errOut, "Error response from daemon") && !strings.Contains(errOut, "invalid") {
			t.Errorf("docker %v: exit %d, %q; want a refusal", args, code, errOut)
		}
	}
	if after := mustDocker(t, d, "ps", "-aq"); after != before {
		t.Errorf("refused creates left containers: %q, was %q", after, before)
	}
	mustDocker(t, d, "rm", "-f", "usr1", "stubborn", "shown")
	assertNothingLeft(t, d)
}

// TestDockerExecOptions: docker exec -e, -w and -u (a name resolved in the
// container's own /etc/passwd) change the exec's process and nothing else;
// an unknown user or a relative directory is refused; -it runs on a
// terminal of the client's size, and a resize reaches it.
func TestDockerExecOptions(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	mustDocker(t, d, "run", "-d", "--name", "box", "-e", "KEEP=k", ref, "sleep", "600")
	out := mustDocker(t, d, "exec", "-e", "A=1", "-e", "KEEP=changed", "-w", "/tmp", "-u", "nobody", "box", "sh", "-c", `echo "$A $KEEP $(pwd) $(id -u):$(id -g)"`)
	if strings.TrimSpace(out) != "1 changed /tmp 65534:65534" {
		t.Errorf("exec -e -w -u nobody: %q", out)
	}
	if out := strings.TrimSpace(mustDocker(t, d, "exec", "-u", "1000:5", "box", "id", "-u")); out != "1000" {
		t.Errorf("exec -u 1000:5: uid %q", out)
	}
	if out := mustDocker(t, d, "exec", "box", "sh", "-c", `echo "$KEEP $(pwd) $(id -u)"`); strings.TrimSpace(out) != "k / 0" {
		t.Errorf("a plain exec after them: %q, want the container's own env, cwd and user", out)
	}
	for _, bad := range [][]string{{"-u", "nosuchuser"}, {"-w", "relative"}} {
		args := append(append([]string{"exec"}, bad...), "box", "true")
		if _, errOut, code := dockerCLI(t, d, args...); code == 0 || !strings.Contains(errOut, "Error response from daemon") {
			t.Errorf("docker %v: exit %d %q, want a refusal", args, code, errOut)
		}
	}

	// -it on a terminal of 33x101: the process sees that size, and a resize.
	master, term := fixtures.Pty(t, 33, 101)
	cmd := dockerCmd(t, d, "exec", "-it", "box", "sh", "-c", "while :; do stty size; sleep 0.1; done")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = term, term, term
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var seen strings.Builder
	readUntil := func(want string) {
		buf := make([]byte, 256)
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(seen.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("the terminal never showed %q: %q", want, seen.String())
			}
			_ = master.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := master.Read(buf)
			seen.Write(buf[:n])
		}
	}
	readUntil("33 101")
	if err := unix.IoctlSetWinsize(int(term.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGWINCH) // as the terminal would, to the CLI
	readUntil("40 120")
	// ^C at the terminal: SIGINT to the container's foreground process, whose end is the CLI's.
	if _, err := master.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != 130 {
		t.Errorf("docker exec -it after ^C: %v, want exit 130\n%s", err, seen.String())
	}
	mustDocker(t, d, "rm", "-f", "box")
	assertNothingLeft(t, d)
}

// ptyClient is a docker CLI running on a pseudo-terminal of its own, read
// and typed at as a person would.
type ptyClient struct {
	t      *testing.T
	cmd    *exec.Cmd
	master *os.File
	term   *os.File
	seen   strings.Builder
	pos    int // where the last expect's match ended
}

func startPtyClient(t *testing.T, d *daemon, rows, cols uint16, args ...string) *ptyClient {
	t.Helper()
	return startOnPty(t, dockerCmd(t, d, args...), rows, cols)
}

// startOnPty starts cmd on a pseudo-terminal of rows×cols of its own.
func startOnPty(t *testing.T, cmd *exec.Cmd, rows, cols uint16) *ptyClient {
	t.Helper()
	p := &ptyClient{t: t}
	p.master, p.term = fixtures.Pty(t, rows, cols)
	p.cmd = cmd
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = p.term, p.term, p.term
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

// expect reads the terminal until want appears after what the last expect
// matched (output read past that match counts for the next expect).
func (p *ptyClient) expect(want string) {
	p.t.Helper()
	buf := make([]byte, 1024)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if i := strings.Index(p.seen.String()[p.pos:], want); i >= 0 {
			p.pos += i + len(want)
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the terminal never showed %q; it shows:\n%q", want, p.seen.String())
		}
		_ = p.master.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _ := p.master.Read(buf)
		p.seen.Write(buf[:n])
	}
}

func (p *ptyClient) typeKeys(s string) {
	p.t.Helper()
	if _, err := p.master.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

// resize changes the terminal's size and tells the CLI, as a terminal does.
func (p *ptyClient) resize(rows, cols uint16) {
	p.t.Helper()
	if err := unix.IoctlSetWinsize(int(p.term.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		p.t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGWINCH)
}

// wait is the CLI's exit code.
func (p *ptyClient) wait() int {
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("the docker CLI did not exit; the terminal shows:\n%q", p.seen.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// TestDockerTerminal: docker run -it is a shell on a terminal of the
// client's size: the prompt shows, keys typed are answered, a resize
// reaches it, ctrl-p ctrl-q detaches and leaves it running with its input
// open, docker attach comes back to it, and its exit code is the CLI's.
// docker run -t without -i gives the output on a terminal too.
func TestDockerTerminal(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.PushBusybox(t, fixtures.Registry(t))
	mustDocker(t, d, "pull", ref)

	p := startPtyClient(t, d, 30, 90, "run", "-it", "--name", "term", ref, "sh")
	p.expect("# ")
	p.typeKeys("stty size\r")
	p.expect("30 90")
	p.resize(50, 150)
	// The resize goes by another request than the keys: ask until it has landed.
	for i := 0; ; i++ {
		p.typeKeys("stty size\r")
		p.expect("# ")
		if strings.Contains(p.seen.String(), "50 150") {
			break
		}
		if i == 50 {
			t.Fatalf("the resize never reached the terminal:\n%q", p.seen.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.typeKeys("echo $((6*7))\r")
	p.expect("42")
	p.typeKeys("\x10\x11") // ctrl-p ctrl-q
	if code := p.wait(); code != 0 {
		t.Errorf("docker run -it after detaching: exit %d\n%q", code, p.seen.String())
	}
	if out := mustDocker(t, d, "ps", "--filter", "name=term", "--format", "{{.Status}}"); !strings.HasPrefix(out, "Up") {
		t.Fatalf("after the detach the container is %q, want running", out)
	}

	a := startPtyClient(t, d, 30, 90, "attach", "term")
	time.Sleep(200 * time.Millisecond) // the attach is made before the CLI reads the terminal
	a.typeKeys("echo back $((1+1))\r")
	a.expect("back 2")
	a.typeKeys("exit 3\r")
	if code := a.wait(); code != 3 {
		t.Errorf("docker attach, then exit 3: CLI exit %d\n%q", code, a.seen.String())
	}
	if out := strings.TrimSpace(mustDocker(t, d, "inspect", "-f", "{{.State.ExitCode}}", "term")); out != "3" {
		t.Errorf("exit code %q, want 3", out)
	}

	o := startPtyClient(t, d, 24, 80, "run", "--rm", "-t", ref, "sh", "-c", "stty size; echo done")
	o.expect("done")
	if code := o.wait(); code != 0 || !strings.Contains(o.seen.String(), "24 80") {
		t.Errorf("docker run -t: exit %d, %q", code, o.seen.String())
	}
	mustDocker(t, d, "rm", "term")
	assertNothingLeft(t, d)
}

// TestDockerInit: --init runs the command under docker-init as PID 1: a
// `sleep` that as PID 1 would ignore SIGTERM stops at once, exit codes pass
// through, zombies are reaped.
func TestDockerInit(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	ref := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Cmd: []string{"sh", "-c", "exit 9"}}), fixtures.Registry(t), "library/initcmd:1")
	mustDocker(t, d, "pull", ref)
	out := mustDocker(t, d, "run", "--rm", "--init", ref, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; sleep 0.2 & wait; ps -o stat | grep -c Z || true")
	if !strings.HasPrefix(out, "/sbin/docker-init -- sh -c") {
		t.Errorf("PID 1 under --init: %q", out)
	}
	if _, _, code := dockerCLI(t, d, "run", "--rm", "--init", ref); code != 9 {
		t.Errorf("--init with the image's own command (exit 9): exit %d", code)
	}
	mustDocker(t, d, "run", "-d", "--init", "--name", "sleeper", ref, "sleep", "600")
	began := time.Now()
	mustDocker(t, d, "stop", "-t", "20", "sleeper")
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("stop of sleep under --init took %v: SIGTERM was not forwarded", took)
	}
	if code := strings.TrimSpace(mustDocker(t, d, "inspect", "-f", "{{.State.ExitCode}}", "sleeper")); code != "143" {
		t.Errorf("exit code after SIGTERM under --init: %s, want 143", code)
	}
	mustDocker(t, d, "rm", "sleeper")
	assertNothingLeft(t, d)
}

// TestDockerHealth: HEALTHCHECK from the request and from the image: a
// container is starting, then healthy once its check passes, unhealthy
// after retries failures; inspect, ps's status and ps --filter health say
// so; --no-healthcheck turns the image's off.
func TestDockerHealth(t *testing.T) {
	fixtures.RequireBinary(t, "docker")
	d := startDaemon(t)
	fixtures.RemoveCgroupOnCleanup(t, "/berth-e2e")
	host := fixtures.Registry(t)
	ref := fixtures.PushBusybox(t, host)
	sick := fixtures.Push(t, fixtures.BusyboxImage(t, fixtures.ImageConfig{Healthcheck: []string{"CMD-SHELL", "exit 1"}}), host, "library/sick:1")
	mustDocker(t, d, "pull", ref)
	mustDocker(t, d, "pull", sick)
	waitHealth := func(name, want string) {
		t.Helper()
		var got string
		for i := 0; i < 100; i++ {
			if got = strings.TrimSpace(mustDocker(t, d, "inspect", "-f", "{{.State.Health.Status}}", name)); got == want {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s's health stayed %q, want %q", name, got, want)
	}
	mustDocker(t, d, "run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok", "--health-interval", "200ms", "--health-retries", "2",
		ref, "sh", "-c", "sleep 1; touch /tmp/ok; exec sleep 600")
	if got := strings.TrimSpace(mustDocker(t, d, "inspect", "-f", "{{.State.Health.Status}}", "hc")); got != "starting" {
		t.Errorf("health at first: %q, want starting", got)
	}
	waitHealth("hc", "healthy")
	if out := mustDocker(t, d, "ps", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}"); !strings.Contains(out, "hc Up") || !strings.Contains(out, "(healthy)") {
		t.Errorf("ps --filter health=healthy: %q", out)
	}
	mustDocker(t, d, "exec", "hc", "rm", "/tmp/ok")
	waitHealth("hc", "unhealthy")
	if streak := strings.TrimSpace(mustDocker(t, d, "inspect", "-f", "{{.State.Health.FailingStreak}}", "hc")); streak < "2" {
		t.Errorf("failing streak %s, want at least 2", streak)
	}
	mustDocker(t, d, "run", "-d", "--name", "img", sick, "sleep", "600")
	waitHealth("img", "unhealthy")
	mustDocker(t, d, "run", "-d", "--name", "off", "--no-healthcheck", sick, "sleep", "600")
	if got := strings.TrimSpace(mustDocker(t, d, "inspect", "-f", "{{.State.Health}}", "off")); got != "<nil>" {
		t.Errorf("--no-healthcheck: health %q", got)
	}
	mustDocker(t, d, "rm", "-f", "hc", "img", "off")
	assertNothingLeft(t, d)
}
