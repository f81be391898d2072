package runtime

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/test/fixtures"
)

// firstDisk finds a whole block device (major, minor) for I/O limits.
func firstDisk(t *testing.T) (int64, int64) {
	f, err := os.Open("/proc/partitions")
	if err != nil {
		t.Skip("no /proc/partitions")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) != 4 || strings.HasPrefix(fl[3], "zram") || strings.HasPrefix(fl[3], "loop") || strings.HasPrefix(fl[3], "ram") {
			continue
		}
		maj, err1 := strconv.ParseInt(fl[0], 10, 64)
		min, err2 := strconv.ParseInt(fl[1], 10, 64)
		if err1 == nil && err2 == nil && min == 0 {
			return maj, min
		}
	}
	t.Skip("no block device to limit")
	return 0, 0
}

// Spec fields beyond Kubernetes' set: I/O throttling, personality, I/O
// priority; and fields this runtime does not do, refused by name.
func TestMoreSpecFields(t *testing.T) {
	fixtures.RequireRoot(t)
	fixtures.RemoveCgroupOnCleanup(t, cgroupParent)
	maj, min := firstDisk(t)
	dev := strconv.FormatInt(maj, 10) + ":" + strconv.FormatInt(min, 10)
	for _, rt := range runtimes(t) {
		t.Run(rt.Name, func(t *testing.T) {
			e := setup(t, rt)
			out, code := e.run(t, "throttle", "cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device 2>/dev/null || grep "+dev+" /sys/fs/cgroup/io.max", func(s *specs.Spec) {
				s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{
					{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: maj, Minor: min}, Rate: 1 << 20}}}
			})
			if code != 0 || (!strings.Contains(out, dev+" 1048576") && !strings.Contains(out, "rbps=1048576")) {
				t.Errorf("read throttle: exit %d %q", code, out)
			}
			out, code = e.run(t, "personality", "uname -m", func(s *specs.Spec) {
				s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
			})
			// runc 1.1 ignores linux.personality (1.2 applies it): theirs.
			if rt.Name != "runc" && (code != 0 || !strings.HasSuffix(out, "86")) {
				t.Errorf("LINUX32 personality: exit %d, uname -m %q", code, out)
			}
			out, code = e.run(t, "ioprio", "ionice -p $$", func(s *specs.Spec) {
				s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}
			})
			// runc 1.1 and crun 1.8 ignore process.ioPriority (runc 1.2
			// applies it): theirs.
			if rt.Name == "berth-runtime" && (code != 0 || !strings.Contains(out, "idle")) {
				t.Errorf("idle I/O priority: exit %d, ionice %q", code, out)
			}
			if rt.Name != "berth-runtime" {
				return
			}
			for field, mod := range map[string]func(*specs.Spec){
				"apparmorProfile": func(s *specs.Spec) { s.Process.ApparmorProfile = "docker-default" },
				"mountLabel":      func(s *specs.Spec) { s.Linux.MountLabel = "system_u:object_r:container_file_t:s0" },
				"intelRdt":        func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "x"} },
				"memory.kernel":   func(s *specs.Spec) { s.Linux.Resources.Memory = &specs.LinuxMemory{Kernel: i64(1 << 20)} },
			} {
				if out, code := e.run(t, "refuse-"+field, "true", mod); code == 0 || !strings.Contains(out, field) {
					t.Errorf("%s: exit %d %q, want a refusal naming it", field, code, out)
				}
			}
		})
	}
}
