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

// Stats read from v1 and v2 trees laid out as the kernel lays them (fakes:
// a test cannot make the kernel account a chosen amount of memory).
func TestCgroupStats(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"cpuacct/cpuacct.usage":              "123456789\n",
		"memory/memory.usage_in_bytes":       "10485760\n",
		"memory/memory.stat":                 "cache 4096\ntotal_rss 2097152\ntotal_inactive_file 1048576\ntotal_pgfault 77\ntotal_pgmajfault 3\n",
		"memory/memory.memsw.usage_in_bytes": "11534336\n",
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	u, err := CgroupPaths{V1: map[string]string{"cpuacct": filepath.Join(dir, "cpuacct"), "memory": filepath.Join(dir, "memory")}}.stats()
	want := CgroupUsage{CPUNanos: 123456789, Memory: 10 << 20, WorkingSet: 9 << 20, RSS: 2 << 20, PageFaults: 77, MajorFaults: 3, Swap: 1 << 20}
	if err != nil || u != want {
		t.Fatalf("v1 stats %+v %v, want %+v", u, err, want)
	}
	v2 := t.TempDir()
	os.WriteFile(filepath.Join(v2, "cpu.stat"), []byte("usage_usec 1500\nuser_usec 1000\n"), 0o644)
	os.WriteFile(filepath.Join(v2, "memory.current"), []byte("8192\n"), 0o644)
	os.WriteFile(filepath.Join(v2, "memory.stat"), []byte("anon 4096\ninactive_file 1024\npgfault 5\npgmajfault 1\n"), 0o644)
	u, err = CgroupPaths{Unified: v2}.stats()
	if want := (CgroupUsage{CPUNanos: 1500000, Memory: 8192, WorkingSet: 7168, RSS: 4096, PageFaults: 5, MajorFaults: 1}); err != nil || u != want {
		t.Fatalf("v2 stats %+v %v, want %+v", u, err, want)
	}
}
