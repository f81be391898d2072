package runtime

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/test/fixtures"
)

// readAll reads a pty master until the slave side is gone (EIO) or timeout.
func readAll(t *testing.T, f *os.File, timeout time.Duration) string {
	t.Helper()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, f); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		f.Close()
		<-done
	}
	return out.String()
}

func TestTerminal(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	for _, rt := range runtimes(t) {
		t.Run(rt.Name, func(t *testing.T) {
			e := setup(t, rt)
			id := e.id("tty")
			e.spec(t, id, "echo tty=$(tty); [ -t 0 ] && echo stdin-is-a-tty; stty size; [ -c /dev/console ] && echo console-ok; while [ ! -e /tmp/stop ]; do sleep 0.05; done", func(s *specs.Spec) {
				s.Process.Terminal = true
				s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
			})
			sock, recv := fixtures.ConsoleSocket(t)
			type res struct {
				f   *os.File
				err error
			}
			got := make(chan res, 1)
			go func() { f, err := recv(); got <- res{f, err} }()
			if out, err := e.cmd("create", "--bundle", e.bundle, "--console-socket", sock, id).CombinedOutput(); err != nil {
				t.Fatalf("create: %v: %s", err, out)
			}
			t.Cleanup(func() { _ = e.cmd("delete", "--force", id).Run() })
			r := <-got
			if r.err != nil {
				t.Fatal(r.err)
			}
			master := r.f
			if err := e.cmd("start", id).Run(); err != nil {
				t.Fatal(err)
			}

			// exec --tty gets a terminal of its own.
			esock, erecv := fixtures.ConsoleSocket(t)
			go func() { f, err := erecv(); got <- res{f, err} }()
			if out, err := e.cmd("exec", "--detach", "--tty", "--console-socket", esock, id, "sh", "-c", "echo exec-tty=$(tty); touch /tmp/stop").CombinedOutput(); err != nil {
				t.Fatalf("exec --tty: %v: %s", err, out)
			}
			r = <-got
			if r.err != nil {
				t.Fatal(r.err)
			}
			execOut := readAll(t, r.f, 5*time.Second)
			if !strings.Contains(execOut, "exec-tty=/dev/pts/") {
				t.Errorf("exec output %q", execOut)
			}
			out := readAll(t, master, 5*time.Second)
			for _, want := range []string{"tty=/dev/pts/0", "stdin-is-a-tty", "30 100", "console-ok"} {
				if !strings.Contains(out, want) {
					t.Errorf("container output %q lacks %q", out, want)
				}
			}
		})
	}
}
