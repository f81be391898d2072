package linux

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestPlanNamespaces(t *testing.T) {
	ns := func(pairs ...string) []specs.LinuxNamespace {
		var out []specs.LinuxNamespace
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, specs.LinuxNamespace{Type: specs.LinuxNamespaceType(pairs[i]), Path: pairs[i+1]})
		}
		return out
	}
	for _, c := range []struct {
		name       string
		ns         []specs.LinuxNamespace
		linked     bool
		early      bool
		joinsMount bool
		err        string
	}{
		{name: "all new: Go's clone", ns: ns("pid", "", "mount", "", "network", "", "user", ""), linked: true},
		{name: "net joined: a thread's setns", ns: ns("pid", "", "network", "/proc/1/ns/net"), linked: true},
		{name: "user joined: early", ns: ns("user", "/proc/1/ns/user", "mount", ""), linked: true, early: true},
		{name: "mount joined: early", ns: ns("mount", "/proc/1/ns/mnt"), linked: true, early: true, joinsMount: true},
		{name: "time: early", ns: ns("time", ""), linked: true, early: true},
		{name: "no constructor", ns: ns("user", "/proc/1/ns/user"), err: "cgo"},
		{name: "new user with joined mount", ns: ns("user", "", "mount", "/proc/1/ns/mnt"), linked: true, err: "new user namespace"},
		{name: "twice", ns: ns("pid", "", "pid", ""), linked: true, err: "twice"},
		{name: "unknown", ns: ns("bogus", ""), linked: true, err: "unknown"},
	} {
		p, err := planNamespaces(c.ns, c.linked)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want an error saying %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || p.early != c.early || p.joinsMount != c.joinsMount {
			t.Errorf("%s: early %v joinsMount %v %v", c.name, p.early, p.joinsMount, err)
		}
	}
	p, _ := planNamespaces(ns("user", "/proc/9/ns/user", "network", "/proc/9/ns/net", "pid", "", "time", ""), true)
	env := strings.Join(p.earlyEnv(map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 5}, "boottime": {Secs: 7, Nanosecs: 3}}), "|")
	for _, want := range []string{"_BERTH_NSENTER=user:/proc/9/ns/user,net:/proc/9/ns/net",
		"_BERTH_TIMENS=boottime 7 3\nmonotonic 5 0\n", "_BERTH_UNSHARE="} {
		if !strings.Contains(env, want) {
			t.Errorf("early env %q lacks %q", env, want)
		}
	}
	if p.cloneFlags != unix.CLONE_NEWPID|unix.CLONE_NEWTIME {
		t.Errorf("flags %#x", p.cloneFlags)
	}
}

func TestTimeOffsetsNeedTimeNamespace(t *testing.T) {
	s := &specs.Spec{Linux: &specs.Linux{TimeOffsets: map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1}}}}
	if err := checkTimeOffsets(s); err == nil || !strings.Contains(err.Error(), "new time namespace") {
		t.Fatalf("offsets without a time namespace: %v", err)
	}
	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.TimeNamespace}}
	s.Linux.TimeOffsets["realtime"] = specs.LinuxTimeOffset{}
	if err := checkTimeOffsets(s); err == nil || !strings.Contains(err.Error(), "realtime") {
		t.Fatalf("an unknown clock: %v", err)
	}
}
