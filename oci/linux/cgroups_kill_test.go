package linux

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-runtime/berth/test/fixtures"
)

// startInCgroup starts a shell that, once inside p, forks two sleepers: the
// kill must reach children the runtime never saw.
func startInCgroup(t *testing.T, p CgroupPaths) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", "read go; sleep 300 & sleep 300 & echo forked; wait")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := p.addProc(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(in, "go")
	buf := make([]byte, 16)
	if n, _ := out.Read(buf); !strings.Contains(string(buf[:n]), "forked") {
		t.Fatalf("shell said %q", buf[:n])
	}
	if pids, _ := p.procs(); len(pids) != 3 {
		t.Fatalf("cgroup holds %v, want the shell and two sleepers", pids)
	}
	return cmd
}

func checkKilled(t *testing.T, p CgroupPaths, cmd *exec.Cmd) {
	t.Helper()
	if pids, err := p.procs(); err != nil || len(pids) != 0 {
		t.Fatalf("left in the cgroup: %v %v", pids, err)
	}
	err := cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("shell ended with %v, want SIGKILL", err)
	}
	if p.frozen() {
		t.Fatal("cgroup left frozen")
	}
}

func TestKillCgroupV2(t *testing.T) {
	for _, c := range []struct {
		name string
		kill func(CgroupPaths) error
	}{
		{"cgroup.kill", func(p CgroupPaths) error { return p.killAll(5 * time.Second) }},
		{"freeze and signal", func(p CgroupPaths) error { return p.killFrozen(5 * time.Second) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := CgroupPaths{Unified: cgroup2Dir(t)}
			cmd := startInCgroup(t, p)
			if err := c.kill(p); err != nil {
				t.Fatal(err)
			}
			checkKilled(t, p, cmd)
		})
	}
}

func TestKillCgroupV1(t *testing.T) {
	fixtures.RequireRoot(t)
	l, err := detectCgroupLayout()
	if err != nil {
		t.Fatal(err)
	}
	if l.Unified != "" || l.V1["freezer"] == "" {
		t.Skip("needs a cgroup v1 freezer hierarchy (hybrid or v1 host)")
	}
	name := "/berth-killtest-" + fmt.Sprint(os.Getpid())
	p := l.paths(name)
	if err := p.create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.destroy() })
	cmd := startInCgroup(t, p)
	if err := KillCgroup(name, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	checkKilled(t, p, cmd)
	if empty, err := CgroupEmpty(name); err != nil || !empty {
		t.Fatalf("CgroupEmpty: %v %v", empty, err)
	}
	// A cgroup that is not there has nothing to kill.
	if err := KillCgroup(filepath.Join(name, "missing"), time.Second); err != nil {
		t.Fatalf("missing cgroup: %v", err)
	}
}
