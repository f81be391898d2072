package linux

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/test/fixtures"
)

// cgroup2Dir makes a directory in a cgroup2 hierarchy for the test: the
// host's (/sys/fs/cgroup on v2 hosts, /sys/fs/cgroup/unified on hybrid
// ones, where device programs apply just the same).
func cgroup2Dir(t *testing.T) string {
	t.Helper()
	fixtures.RequireRoot(t)
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var st unix.Statfs_t
		if unix.Statfs(root, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			dir := filepath.Join(root, "berth-devtest-"+strings.ReplaceAll(t.Name(), "/", "-"))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Remove(dir) })
			return dir
		}
	}
	t.Skip("no cgroup2 hierarchy mounted")
	return ""
}

// The filter decides opens for processes in the cgroup: the spec's rules,
// last match winning, the rest denied.
func TestDeviceFilterEnforced(t *testing.T) {
	dir := cgroup2Dir(t)
	maj, zero, null, full := int64(1), int64(5), int64(3), int64(7)
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: &maj, Minor: &null, Access: "rwm"},
		{Allow: true, Type: "c", Major: &maj, Minor: &zero, Access: "r"},
		{Allow: true, Type: "c", Major: &maj, Minor: &full, Access: "rw"},
		{Allow: false, Type: "c", Major: &maj, Minor: &full, Access: "w"}, // later: wins for writes
	}
	if err := attachDeviceFilter(dir, rules); err != nil {
		t.Fatal(err)
	}
	// Attaching again replaces the program rather than stacking a second.
	if err := attachDeviceFilter(dir, rules); err != nil {
		t.Fatal(err)
	}
	fd, _ := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	ids, err := attachedDevicePrograms(fd)
	unix.Close(fd)
	if err != nil || len(ids) != 1 {
		t.Fatalf("programs attached: %v %v, want 1", ids, err)
	}
	script := `echo $$ > ` + dir + `/cgroup.procs
head -c1 /dev/zero >/dev/null && echo zero-read-ok
(echo x > /dev/zero) 2>/dev/null || echo zero-write-denied
head -c1 /dev/full >/dev/null && echo full-read-ok
(echo x > /dev/full) 2>/dev/null; [ $? -ne 0 ] && echo full-write-denied
head -c1 /dev/urandom >/dev/null 2>&1 || echo urandom-denied
`
	sh := fixtures.BusyboxBinary(t)
	cmd := exec.Command(sh, "sh", "-c", script)
	// The shell writes its own output to a pipe, not a device: only the
	// opens in the script meet the filter.
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	out, _ := cmd.CombinedOutput()
	for _, want := range []string{"zero-read-ok", "zero-write-denied", "full-read-ok", "full-write-denied", "urandom-denied"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
}

func TestDeviceFilterBadRules(t *testing.T) {
	for _, r := range []specs.LinuxDeviceCgroup{{Type: "x", Access: "r"}, {Type: "c", Access: "rq"}} {
		if _, err := deviceFilter([]specs.LinuxDeviceCgroup{r}); err == nil {
			t.Errorf("rule %+v accepted", r)
		}
	}
}
