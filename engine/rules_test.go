package engine

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// Docker's rules, tested as plain Go: what dockerd does, without HTTP.

func TestRestartBackoff(t *testing.T) {
	start := time.Now()
	for _, tc := range []struct {
		restarts int
		up       time.Duration
		want     time.Duration
	}{
		{0, time.Second, 100 * time.Millisecond},
		{1, time.Second, 200 * time.Millisecond},
		{3, time.Second, 800 * time.Millisecond},
		{20, time.Second, 100 * time.Millisecond << 10}, // capped
		{5, 11 * time.Second, 100 * time.Millisecond},   // up a good while: starts over
	} {
		c := store.Container{RestartCount: tc.restarts, StartedAt: start, FinishedAt: start.Add(tc.up)}
		if got := restartDelay(c); got != tc.want {
			t.Errorf("%d restarts, up %v: delay %v, want %v", tc.restarts, tc.up, got, tc.want)
		}
	}
}

func TestRestartPolicies(t *testing.T) {
	e := &Engine{stops: stopMarks{t.TempDir()}}
	rec := func(policy string, max, code, restarts int) store.Container {
		return store.Container{ID: policy, ExitCode: int32(code), RestartCount: restarts,
			Config: []byte(`{"HostConfig":{"RestartPolicy":{"Name":"` + policy + `","MaximumRetryCount":` + string(rune('0'+max)) + `}}}`)}
	}
	for _, tc := range []struct {
		c          store.Container
		boot, want bool
	}{
		{rec("no", 0, 1, 0), false, false},
		{rec("always", 0, 0, 0), false, true},
		{rec("always", 0, 0, 0), true, true},
		{rec("on-failure", 0, 0, 0), false, false},
		{rec("on-failure", 0, 1, 7), false, true},
		{rec("on-failure", 2, 1, 1), false, true},
		{rec("on-failure", 2, 1, 2), false, false}, // its count is spent
		{rec("on-failure", 0, 1, 0), true, false},  // not when berthd starts
		{rec("unless-stopped", 0, 0, 0), true, true},
	} {
		if got := e.wantsRestart(tc.c, tc.boot); got != tc.want {
			t.Errorf("%s (code %d, %d restarts, boot %v): restart %v, want %v", tc.c.Config, tc.c.ExitCode, tc.c.RestartCount, tc.boot, got, tc.want)
		}
	}
	stopped := rec("unless-stopped", 0, 0, 0)
	stopped.ID = "stopped"
	e.stops.mark(stopped.ID)
	if e.wantsRestart(stopped, true) {
		t.Error("a container the user stopped restarts")
	}
	if err := checkPolicy(RestartPolicy{Name: "sometimes"}, false); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown policy: %v", err)
	}
	if err := checkPolicy(RestartPolicy{Name: "always"}, true); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("--restart with --rm: %v", err)
	}
}

func TestContainerFilters(t *testing.T) {
	c := store.Container{ID: "abcdef0123", Name: "web-1", State: store.ContainerRunning, ImageRef: "docker.io/library/busybox:latest",
		ImageID: "sha256:feed", Labels: map[string]string{"app": "web", "tier": "front"}}
	for _, tc := range []struct {
		f    Filters
		want bool
	}{
		{Filters{"name": {"web"}}, true},
		{Filters{"name": {"/web-1"}}, true},
		{Filters{"id": {"abc"}}, true},
		{Filters{"id": {"bcd"}}, false},
		{Filters{"status": {"exited", "running"}}, true},
		{Filters{"ancestor": {"busybox:latest"}}, true},
		{Filters{"ancestor": {"feed"}}, true},
		{Filters{"label": {"app=web", "tier"}}, true},
		{Filters{"label": {"app=web", "tier=back"}}, false}, // every label must match
		{Filters{"name": {"web"}, "status": {"exited"}}, false},
		{Filters{"bogus": {"x"}}, false},
	} {
		if got := Matches(c, tc.f); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.f, got, tc.want)
		}
	}
	ev := Event{Type: "container", Action: "start", ID: "abcdef0123", Attrs: map[string]string{"name": "web-1", "image": "busybox", "app": "web"}}
	for _, tc := range []struct {
		f    Filters
		want bool
	}{
		{Filters{"type": {"container"}, "event": {"die", "start"}}, true},
		{Filters{"container": {"web-1"}}, true},
		{Filters{"container": {"abcd"}}, true},
		{Filters{"image": {"busybox"}}, true},
		{Filters{"label": {"app=web"}}, true},
		{Filters{"network": {"web-1"}}, false},
	} {
		if got := ev.Matches(tc.f); got != tc.want {
			t.Errorf("event %v: %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestSubnetsAndNames(t *testing.T) {
	taken := []Network{{Name: "a", Subnet: "10.89.0.0/24"}, {Name: "b", Subnet: "10.89.1.0/24"}}
	if got, err := pickSubnet(NetworkCreate{}, taken); err != nil || got != "10.89.2.0/24" {
		t.Errorf("first free /24: %q, %v", got, err)
	}
	for _, tc := range []struct {
		ipam *IPAMConfig
		kind error
	}{
		{&IPAMConfig{Subnet: "10.89.1.0/24"}, errdefs.ErrFailedPrecondition},
		{&IPAMConfig{Subnet: "fd00::/64"}, errdefs.ErrInvalidArgument},
		{&IPAMConfig{Subnet: ""}, errdefs.ErrInvalidArgument},
		{&IPAMConfig{Subnet: "192.168.77.0/24", Gateway: "192.168.77.9"}, errdefs.ErrUnimplemented},
	} {
		if _, err := pickSubnet(NetworkCreate{IPAM: tc.ipam}, taken); !errors.Is(err, tc.kind) {
			t.Errorf("%+v: %v, want %v", *tc.ipam, err, tc.kind)
		}
	}
	c := store.Container{ID: "0123456789abcdef", Name: "db"}
	b := Config{}
	b.NetworkingConfig.EndpointsConfig = map[string]struct{ Aliases []string }{"app": {Aliases: []string{"pg", "database", "pg"}}}
	if got := aliasesOf(c, b, Network{Name: "app"}); !slices.Equal(got, []string{"db", "0123456789ab", "database", "pg"}) {
		t.Errorf("aliases on app: %v", got)
	}
	if got := aliasesOf(c, b, Network{Name: "other"}); !slices.Equal(got, []string{"db", "0123456789ab"}) {
		t.Errorf("aliases on another network: %v", got)
	}
	for _, tc := range []struct {
		mode, endpoint, want string
	}{{"", "", "bridge"}, {"default", "default", "bridge"}, {"", "app", "app"}, {"default", "app", "app"}, {"host", "app", "host"}, {"app", "app", "app"}} {
		var b Config
		b.HostConfig.NetworkMode = tc.mode
		if tc.endpoint != "" {
			b.NetworkingConfig.EndpointsConfig = map[string]struct{ Aliases []string }{tc.endpoint: {}}
		}
		if got := b.NetworkName(); got != tc.want {
			t.Errorf("network mode %q, endpoint %q: network %q, want %q", tc.mode, tc.endpoint, got, tc.want)
		}
	}
	if got := freeIfName(map[string]netAttachment{"x": {IfName: "eth1"}, "y": {IfName: "eth3"}}); got != "eth2" {
		t.Errorf("free interface: %s", got)
	}
}

// Label filters ask for every label given, on each kind of object, as
// dockerd's filters.MatchKVList (Ryuk's filters are five labels at once).
func TestLabelFilters(t *testing.T) {
	labels := map[string]string{"org.testcontainers": "true", "org.testcontainers.sessionId": "a"}
	session := func(id string) Filters {
		return Filters{"label": {"org.testcontainers=true", "org.testcontainers.sessionId=" + id}}
	}
	v := Volume{Name: "data", Labels: labels}
	if !volumeMatches(v, false, session("a")) || volumeMatches(v, false, session("b")) {
		t.Error("volume label filters")
	}
	if !NetworkMatches(Network{Name: "n", Labels: labels}, session("a")) || NetworkMatches(Network{Name: "n", Labels: labels}, session("b")) {
		t.Error("network label filters")
	}
	if !(Event{Type: "container", Attrs: labels}).Matches(session("a")) || (Event{Type: "container", Attrs: labels}).Matches(session("b")) {
		t.Error("event label filters")
	}
	for _, c := range []struct {
		f     Filters
		inUse bool
		want  bool
	}{
		{Filters{"name": {"at"}}, false, true},
		{Filters{"name": {"x"}}, false, false},
		{Filters{"dangling": {"true"}}, false, true},
		{Filters{"dangling": {"true"}}, true, false},
		{Filters{"dangling": {"false"}}, true, true},
		{Filters{"driver": {"local"}}, false, true},
		{Filters{"label": {"org.testcontainers"}}, false, true},
		{Filters{"label": {"other"}}, false, false},
	} {
		if got := volumeMatches(v, c.inUse, c.f); got != c.want {
			t.Errorf("volume %v (in use %t): %t, want %t", c.f, c.inUse, got, c.want)
		}
	}
}
