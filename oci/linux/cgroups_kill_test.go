package linux

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
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
	write := func(dir string, files map[string]string) {
		for name, content := range files {
			os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
			os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
		}
	}
	dir := t.TempDir()
	write(dir, map[string]string{
		"cpuacct/cpuacct.usage":                           "123456789\n",
		"cpuacct/cpuacct.stat":                            "user 7\nsystem 3\n",
		"cpu/cpu.stat":                                    "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n",
		"memory/memory.usage_in_bytes":                    "10485760\n",
		"memory/memory.stat":                              "cache 4096\ntotal_cache 8192\ntotal_mapped_file 4096\ntotal_rss 2097152\ntotal_inactive_file 1048576\ntotal_pgfault 77\ntotal_pgmajfault 3\ntotal_swap 1048576\n",
		"memory/memory.max_usage_in_bytes":                "20971520\n",
		"memory/memory.failcnt":                           "2\n",
		"memory/memory.oom_control":                       "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
		"pids/pids.current":                               "3\n",
		"pids/pids.max":                                   "max\n",
		"blkio/blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n",
		"blkio/blkio.throttle.io_serviced_recursive":      "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n",
		"hugetlb/hugetlb.2MB.usage_in_bytes":              "2097152\n",
		"hugetlb/hugetlb.2MB.max_usage_in_bytes":          "4194304\n",
	})
	v1 := map[string]string{}
	for _, c := range []string{"cpuacct", "cpu", "memory", "pids", "blkio", "hugetlb"} {
		v1[c] = filepath.Join(dir, c)
	}
	u, err := CgroupPaths{V1: v1}.stats(nil, true)
	want := CgroupUsage{CPUNanos: 123456789, UserNanos: 70e6, SystemNanos: 30e6, Periods: 10, ThrottledPeriods: 4, ThrottledNanos: 5000,
		Memory: 10 << 20, WorkingSet: 9 << 20, RSS: 2 << 20, Cache: 8192, MappedFile: 4096, MaxMemory: 20 << 20,
		PageFaults: 77, MajorFaults: 3, Swap: 1 << 20, Failcnt: 2, OOMKills: 1, Pids: 3,
		IO:      map[string]IOUsage{"8:0": {ReadBytes: 4096, WriteBytes: 8192, Reads: 1, Writes: 2}},
		Hugetlb: map[string][2]uint64{"2MB": {2 << 20, 4 << 20}}}
	if err != nil || !reflect.DeepEqual(u, want) {
		t.Fatalf("v1 stats\n%+v %v, want\n%+v", u, err, want)
	}
	// Without full, only what kubelet's stats calls read.
	basic := CgroupUsage{CPUNanos: want.CPUNanos, Memory: want.Memory, WorkingSet: want.WorkingSet, RSS: want.RSS, Cache: want.Cache,
		MappedFile: want.MappedFile, PageFaults: want.PageFaults, MajorFaults: want.MajorFaults, Swap: want.Swap, Pids: want.Pids}
	if u, err = (CgroupPaths{V1: v1}).stats(nil, false); err != nil || !reflect.DeepEqual(u, basic) {
		t.Fatalf("v1 basic stats\n%+v %v, want\n%+v", u, err, basic)
	}
	v2 := t.TempDir()
	write(v2, map[string]string{
		"cpu.stat":            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 6\nnr_throttled 2\nthrottled_usec 7\n",
		"memory.current":      "8192\n",
		"memory.peak":         "16384\n",
		"memory.stat":         "anon 4096\nfile 2048\nfile_mapped 1024\nkernel 512\ninactive_file 1024\npgfault 5\npgmajfault 1\n",
		"memory.events":       "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
		"pids.current":        "2\n",
		"pids.max":            "100\n",
		"io.stat":             "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
		"hugetlb.2MB.current": "0\n",
		"hugetlb.2MB.max":     "max\n",
		"cpu.pressure":        "some avg10=0.00 avg60=0.00 avg300=0.00 total=1500\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=500\n",
	})
	u, err = CgroupPaths{Unified: v2}.stats(nil, true)
	want = CgroupUsage{CPUNanos: 1500000, UserNanos: 1000000, SystemNanos: 500000, Periods: 6, ThrottledPeriods: 2, ThrottledNanos: 7000,
		Memory: 8192, WorkingSet: 7168, RSS: 4096, Cache: 2048, MappedFile: 1024, Kernel: 512, MaxMemory: 16384,
		PageFaults: 5, MajorFaults: 1, Failcnt: 3, OOMKills: 1, Pids: 2, PidsMax: 100,
		IO:       map[string]IOUsage{"8:0": {ReadBytes: 10, WriteBytes: 20, Reads: 1, Writes: 2}},
		Hugetlb:  map[string][2]uint64{"2MB": {0, 0}},
		Pressure: map[string][2]time.Duration{"cpu": {1500 * time.Microsecond, 500 * time.Microsecond}}}
	if err != nil || !reflect.DeepEqual(u, want) {
		t.Fatalf("v2 stats\n%+v %v, want\n%+v", u, err, want)
	}
}
