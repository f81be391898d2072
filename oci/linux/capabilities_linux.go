package linux

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// capNames lists capabilities by number, as linux/capability.h does.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// KnownCapabilities returns the names of every capability, in number order.
func KnownCapabilities() []string { return append([]string(nil), capNames...) }

// capSet is a bitmask over capability numbers.
type capSet uint64

func parseCapList(field string, names []string) (capSet, error) {
	var s capSet
	for _, n := range names {
		idx := -1
		for i, c := range capNames {
			if strings.EqualFold(c, n) || strings.EqualFold(c, "CAP_"+n) {
				idx = i
				break
			}
		}
		if idx < 0 {
			return 0, fmt.Errorf("process.capabilities.%s: unknown capability %q", field, n)
		}
		s |= 1 << idx
	}
	return s, nil
}

type capabilities struct {
	bounding, effective, permitted, inheritable, ambient capSet
	// lastCap is the highest capability the running kernel knows.
	lastCap int
}

func parseCaps(c *specs.LinuxCapabilities) (*capabilities, error) {
	out := &capabilities{lastCap: lastCap()}
	if c == nil {
		return out, nil // no capabilities at all
	}
	var err error
	for _, f := range []struct {
		name string
		in   []string
		out  *capSet
	}{
		{"bounding", c.Bounding, &out.bounding}, {"effective", c.Effective, &out.effective},
		{"permitted", c.Permitted, &out.permitted}, {"inheritable", c.Inheritable, &out.inheritable},
		{"ambient", c.Ambient, &out.ambient},
	} {
		if *f.out, err = parseCapList(f.name, f.in); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func lastCap() int {
	b, err := readCgroupFile("/proc/sys/kernel", "cap_last_cap")
	if err != nil {
		return len(capNames) - 1
	}
	var n int
	if _, err := fmt.Sscan(b, &n); err != nil {
		return len(capNames) - 1
	}
	return n
}

func (c *capabilities) dropBounding() error {
	for i := 0; i <= c.lastCap; i++ {
		if c.bounding&(1<<i) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil {
			return fmt.Errorf("drop %s from the bounding set: %w", capName(i), err)
		}
	}
	return nil
}

func capName(i int) string {
	if i < len(capNames) {
		return capNames[i]
	}
	return fmt.Sprintf("capability %d", i)
}

// apply sets effective, permitted and inheritable on this thread, then raises ambient.
func (c *capabilities) apply() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i, v := range []capSet{c.effective, c.permitted, c.inheritable} {
		lo, hi := uint32(v), uint32(v>>32)
		switch i {
		case 0:
			data[0].Effective, data[1].Effective = lo, hi
		case 1:
			data[0].Permitted, data[1].Permitted = lo, hi
		case 2:
			data[0].Inheritable, data[1].Inheritable = lo, hi
		}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for i := 0; i <= c.lastCap; i++ {
		if c.ambient&(1<<i) == 0 {
			continue
		}
		// Like runc 1.2, go on rather than fail: "runc spec" itself lists
		// ambient capabilities that are not inheritable. Debug, not warn:
		// the init's stderr is the container's.
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(i), 0, 0); err != nil {
			slog.Debug("cannot raise ambient capability (it must be permitted and inheritable)",
				slog.String("capability", capName(i)), slog.Any("error", err))
		}
	}
	return nil
}

// GrantableCapabilities are the capabilities this process may hand to a
// container: those of its own bounding set that the running kernel knows.
// "All capabilities" (privileged, or adding ALL) means these, as containerd
// and CRI-O take it: root without CAP_SYS_RESOURCE, say, cannot give it.
func GrantableCapabilities() []string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return KnownCapabilities()
	}
	for _, l := range strings.Split(string(b), "\n") {
		hex, ok := strings.CutPrefix(l, "CapBnd:\t")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			break
		}
		var out []string
		for i, n := range capNames {
			if mask&(1<<i) != 0 {
				out = append(out, n)
			}
		}
		return out
	}
	return KnownCapabilities()
}
