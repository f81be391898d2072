package linux

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func parseLayout(t *testing.T, mountinfo string) cgroupLayout {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(p, []byte(mountinfo), 0o644)
	f, _ := os.Open(p)
	defer f.Close()
	l, err := parseCgroupLayout(f)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCgroupLayout(t *testing.T) {
	hybrid := parseLayout(t, `25 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
30 25 0:27 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,xattr,name=systemd
`)
	if hybrid.Unified != "" || hybrid.V1["cpu"] != "/sys/fs/cgroup/cpu,cpuacct" || hybrid.V1["cpuacct"] != hybrid.V1["cpu"] || hybrid.V1["name=systemd"] == "" {
		t.Fatalf("hybrid host: %+v", hybrid)
	}
	p := hybrid.paths("/kubepods/pod1/c1")
	if dirs := p.dirs(); len(dirs) != 3 {
		t.Fatalf("co-mounted cpu,cpuacct counted twice: %v", dirs)
	}
	// The stats' few: only the controllers named, a missing one (pids) left out.
	if few := hybrid.paths("kubepods//pod1/c1", "cpuacct", "memory", "pids").V1; len(few) != 2 ||
		few["cpuacct"] != "/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/c1" || few["memory"] != "/sys/fs/cgroup/memory/kubepods/pod1/c1" {
		t.Fatalf("paths of three controllers: %v", few)
	}
	v2 := parseLayout(t, `35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`)
	if v2.Unified != "/sys/fs/cgroup" || v2.V1 != nil {
		t.Fatalf("v2 host: %+v", v2)
	}
	if got := v2.paths("/kubepods/pod1/c1").Unified; got != "/sys/fs/cgroup/kubepods/pod1/c1" {
		t.Fatalf("v2 path: %s", got)
	}
}

// A cgroup2 mount point is known as a unified layout from statfs alone (no
// mount table read); anything else is left to the mount table.
func TestUnifiedAtStatfs(t *testing.T) {
	if l, ok := unifiedAt(t.TempDir()); ok {
		t.Fatalf("a plain directory taken for cgroup2: %+v", l)
	}
	for _, dir := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var fs unix.Statfs_t
		if unix.Statfs(dir, &fs) != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
			continue
		}
		if l, ok := unifiedAt(dir); !ok || l.Unified != dir || l.V1 != nil {
			t.Fatalf("cgroup2 at %s: %+v %v", dir, l, ok)
		}
		return
	}
	t.Skip("no cgroup2 mount on this host")
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func readF(t *testing.T, dir, f string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, f))
	if err != nil {
		t.Fatalf("%s not written: %v", f, err)
	}
	return strings.TrimSpace(string(b))
}

var testResources = &specs.LinuxResources{
	Memory:  &specs.LinuxMemory{Limit: i64(256 << 20), Reservation: i64(128 << 20), Swap: i64(512 << 20)},
	CPU:     &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000), Cpus: "0-1"},
	Pids:    &specs.LinuxPids{Limit: i64(100)},
	BlockIO: &specs.LinuxBlockIO{Weight: u16(500)},
	Unified: map[string]string{"memory.high": "200000000"},
}

// The v2 files as the kernel expects them, on a fake cgroup2 directory.
func TestSetV2(t *testing.T) {
	dir := t.TempDir()
	if err := setV2(dir, testResources); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{
		"memory.max": "268435456", "memory.low": "134217728", "memory.swap.max": "268435456",
		"cpu.weight": "39", "cpu.max": "50000 100000", "cpuset.cpus": "0-1", "pids.max": "100",
		"io.weight": "default 4950", "memory.high": "200000000",
	} {
		if got := readF(t, dir, f); got != want {
			t.Errorf("%s = %q, want %q", f, got, want)
		}
	}
	// Swap below the limit is a contradiction, named.
	bad := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(50)}}
	if err := setV2(t.TempDir(), bad); err == nil {
		t.Error("swap below limit accepted")
	}
}

// The v1 files, each in its controller's directory, on fake hierarchies.
func TestSetV1(t *testing.T) {
	base := t.TempDir()
	dirs := map[string]string{}
	for _, c := range []string{"memory", "cpu", "cpuset", "pids", "blkio", "devices"} {
		dirs[c] = filepath.Join(base, c)
		os.MkdirAll(dirs[c], 0o755)
	}
	r := *testResources
	r.Unified = nil
	r.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	if err := setV1(dirs, &r); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{
		"memory/memory.limit_in_bytes": "268435456", "memory/memory.soft_limit_in_bytes": "134217728",
		"memory/memory.memsw.limit_in_bytes": "536870912", "cpu/cpu.shares": "1024", "cpu/cpu.cfs_quota_us": "50000",
		"cpu/cpu.cfs_period_us": "100000", "cpuset/cpuset.cpus": "0-1", "pids/pids.max": "100", "blkio/blkio.weight": "500",
	} {
		if got := readF(t, base, f); got != want {
			t.Errorf("%s = %q, want %q", f, got, want)
		}
	}
	// A limit for a controller the host lacks is an error naming it.
	if err := setV1(map[string]string{}, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(1)}}); err == nil || !strings.Contains(err.Error(), "pids") {
		t.Errorf("missing controller: %v", err)
	}
}

func TestSharesToWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{2: 1, 1024: 39, 262144: 10000} {
		if got := sharesToWeight(shares); got != want {
			t.Errorf("shares %d: weight %d, want %d", shares, got, want)
		}
	}
}

// The resources beyond Kubernetes' set that Docker users ask for.
func TestSetMoreResources(t *testing.T) {
	w, burst, idle := u16(300), u64(20000), i64(1)
	swappiness, rt, rtPeriod, classID := u64(30), i64(950000), u64(1000000), uint32(0x100001)
	oomOff := true
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Swappiness: swappiness, DisableOOMKiller: &oomOff},
		CPU:    &specs.LinuxCPU{Burst: burst, Idle: idle, RealtimeRuntime: rt, RealtimePeriod: rtPeriod},
		BlockIO: &specs.LinuxBlockIO{
			WeightDevice:          []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: w}},
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1 << 20}},
		},
		Network: &specs.LinuxNetwork{ClassID: &classID, Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 5}}},
	}
	base := t.TempDir()
	dirs := map[string]string{}
	for _, c := range []string{"memory", "cpu", "blkio", "net_cls", "net_prio"} {
		dirs[c] = filepath.Join(base, c)
		os.MkdirAll(dirs[c], 0o755)
	}
	if err := setV1(dirs, r); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{
		"memory/memory.swappiness": "30", "memory/memory.oom_control": "1", "cpu/cpu.cfs_burst_us": "20000",
		"cpu/cpu.idle": "1", "cpu/cpu.rt_runtime_us": "950000", "cpu/cpu.rt_period_us": "1000000",
		"blkio/blkio.weight_device": "8:0 300", "blkio/blkio.throttle.read_bps_device": "8:0 1048576",
		"net_cls/net_cls.classid": "1048577", "net_prio/net_prio.ifpriomap": "eth0 5",
	} {
		if got := readF(t, base, f); got != want {
			t.Errorf("v1 %s = %q, want %q", f, got, want)
		}
	}
	if err := setV1(dirs, &specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}); err == nil {
		t.Error("v1 accepted a unified map")
	}

	// v2: what it has, and clear errors for what only v1 has.
	v2 := &specs.LinuxResources{CPU: &specs.LinuxCPU{Burst: burst, Idle: idle}, BlockIO: &specs.LinuxBlockIO{
		WeightDevice:          r.BlockIO.WeightDevice,
		ThrottleReadBpsDevice: r.BlockIO.ThrottleReadBpsDevice,
	}}
	dir := t.TempDir()
	if err := setV2(dir, v2); err != nil {
		t.Fatal(err)
	}
	// io.weight is written twice (default, then the device): a fake file keeps the last.
	for f, want := range map[string]string{"cpu.max.burst": "20000", "cpu.idle": "1", "io.max": "8:0 rbps=1048576", "io.weight": "8:0 2930"} {
		if got := readF(t, dir, f); got != want {
			t.Errorf("v2 %s = %q, want %q", f, got, want)
		}
	}
	for name, bad := range map[string]*specs.LinuxResources{
		"swappiness":       {Memory: &specs.LinuxMemory{Swappiness: swappiness}},
		"disableOOMKiller": {Memory: &specs.LinuxMemory{DisableOOMKiller: &oomOff}},
		"realtime":         {CPU: &specs.LinuxCPU{RealtimeRuntime: rt}},
		"network":          {Network: r.Network},
	} {
		if err := setV2(t.TempDir(), bad); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("v2 with %s: %v", name, err)
		}
	}
	for name, bad := range map[string]*specs.LinuxResources{
		"memory.kernel": {Memory: &specs.LinuxMemory{Kernel: i64(1)}},
		"rdma":          {Rdma: map[string]specs.LinuxRdma{"mlx": {}}},
		"swappiness":    {Memory: &specs.LinuxMemory{Swappiness: u64(101)}},
	} {
		if err := unsupportedResources(bad); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSetV1KeepsNoSwap: a limited cgroup that allows no swap (memsw equal
// to the memory limit, as a limit with no swap of its own sets it) keeps
// none when only the memory limit is raised (an NRI plugin's update, a
// resize) — the kernel would refuse a memory limit above memsw. One whose
// memsw is unlimited is left so.
func TestSetV1KeepsNoSwap(t *testing.T) {
	for _, c := range []struct{ limit, memsw, want string }{
		{"67108864", "67108864", "100663296"},
		{"67108864", "9223372036854771712", "9223372036854771712"},
		{"9223372036854771712", "9223372036854771712", "9223372036854771712"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(c.limit+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), []byte(c.memsw+"\n"), 0o644)
		if err := setV1(map[string]string{"memory": dir}, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(96 << 20)}}); err != nil {
			t.Fatal(err)
		}
		if got := readF(t, dir, "memory.limit_in_bytes"); got != "100663296" {
			t.Errorf("limit %s: memory.limit_in_bytes = %s", c.limit, got)
		}
		if got := readF(t, dir, "memory.memsw.limit_in_bytes"); got != c.want {
			t.Errorf("limit %s, memsw %s: memory.memsw.limit_in_bytes = %s, want %s", c.limit, c.memsw, got, c.want)
		}
	}
}
