package sandbox

import (
	"os"
	"path/filepath"
	"testing"
)

// Without a DNSConfig a pod gets the node's resolv.conf minus the loopback
// resolvers (systemd-resolved's 127.0.0.53, a local dnsmasq), which would
// point into the pod's own network namespace.
func TestHostResolvConfDropsLoopback(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	in := "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nnameserver fd00::1\nsearch example.com\noptions edns0 trust-ad\n"
	if err := os.WriteFile(p, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := hostResolvConf(p)
	want := "# generated\nnameserver 10.0.0.2\nnameserver fd00::1\nsearch example.com\noptions edns0 trust-ad\n"
	if err != nil || string(got) != want {
		t.Fatalf("got %q (%v), want %q", got, err, want)
	}
	if got, err := hostResolvConf(filepath.Join(t.TempDir(), "none")); err != nil || got != nil {
		t.Fatalf("missing host file: %q %v", got, err)
	}
}
