package engine

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/shim"
	"github.com/berth-runtime/berth/test/fixtures"
)

// allocateWithin fails the test instead of hanging when allocate does not
// return (a refusal once left p.mu locked, and every later create waited).
func allocateWithin(t *testing.T, p *ports, want Bindings, held map[string]bool) (Bindings, func(), error) {
	t.Helper()
	type result struct {
		b    Bindings
		done func()
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		b, done, err := p.allocate(want, func() map[string]bool { return held })
		ch <- result{b, done, err}
	}()
	select {
	case r := <-ch:
		return r.b, r.done, r.err
	case <-time.After(30 * time.Second):
		t.Fatal("allocate did not return: the allocator is stuck")
		return nil, nil, nil
	}
}

func TestPortAllocation(t *testing.T) {
	var p ports
	lo, hi := ephemeralRange()
	portOf := func(b Bindings, spec string) int {
		t.Helper()
		if len(b[spec]) == 0 {
			t.Fatalf("%s: %+v", spec, b)
		}
		n, _ := strconv.Atoi(b[spec][0].HostPort)
		return n
	}

	// Picked ports come from the ephemeral range, and two creates in
	// flight never get the same one.
	a, doneA, err := allocateWithin(t, &p, Bindings{"80/tcp": {{}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, doneB, err := allocateWithin(t, &p, Bindings{"80/tcp": {{HostPort: "0"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := portOf(a, "80/tcp"), portOf(b, "80/tcp")
	if pa == pb || pa < lo || pa > hi || pb < lo || pb > hi {
		t.Fatalf("picked %d and %d, want two ports of %d-%d", pa, pb, lo, hi)
	}
	doneA()
	doneB()

	// "" is every address of both families, as dockerd publishes it (the
	// IPv6 side is the shim's); 0.0.0.0 and an IPv6 address one family.
	fam, done, err := allocateWithin(t, &p, Bindings{
		"80/tcp": {{}}, "81/tcp": {{HostIp: "0.0.0.0"}}, "82/udp": {{HostIp: "::1"}}, "83/sctp": {{}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hostHasIPv6() {
		if b := fam["80/tcp"]; len(b) != 2 || b[0].HostIp != "" || b[1].HostIp != "::" || b[0].HostPort != b[1].HostPort {
			t.Errorf(`"" on a host with IPv6: %+v, want "" and "::" on one port`, b)
		}
		if b := fam["82/udp"]; len(b) != 1 || b[0].HostIp != "::1" {
			t.Errorf("::1: %+v", b)
		}
		fw := forwards(fam, "10.88.0.9")
		if len(fw) != 2 || fw[0] != (shim.Forward{Proto: "tcp", HostIP: "::", HostPort: portOf(fam, "80/tcp"), Target: "10.88.0.9:80"}) || fw[1].Proto != "udp" || fw[1].Target != "10.88.0.9:82" {
			t.Errorf("forwards: %+v", fw)
		}
		if pm, _ := portMappings(fam); len(pm) != 3 {
			t.Errorf("portmap's mappings (IPv4 only): %+v", pm)
		}
	}
	if b := fam["81/tcp"]; len(b) != 1 || b[0].HostIp != "" {
		t.Errorf("0.0.0.0: %+v, want IPv4 only", b)
	}
	if b := fam["83/sctp"]; len(b) != 1 {
		t.Errorf("sctp: %+v, want IPv4 only", b)
	}
	done()

	// A port a record holds is refused, the refusal gives back what the
	// same create had reserved, and the allocator goes on serving.
	base := fixtures.FreePortRun(t, 3)
	held := map[string]bool{"tcp/" + strconv.Itoa(base+1): true}
	_, _, err = allocateWithin(t, &p, Bindings{
		"80/tcp": {{HostPort: strconv.Itoa(base)}},
		"81/tcp": {{HostIp: "127.0.0.1", HostPort: strconv.Itoa(base + 1)}},
	}, held)
	if want := fmt.Sprintf("Bind for 127.0.0.1:%d failed: port is already allocated", base+1); err == nil || err.Error() != want {
		t.Fatalf("held port: %v, want %q", err, want)
	}
	if p.reserved["tcp/"+strconv.Itoa(base)] {
		t.Fatalf("a refused create kept its reservation of %d", base)
	}
	again, done, err := allocateWithin(t, &p, Bindings{"80/tcp": {{HostPort: strconv.Itoa(base)}}}, held)
	if err != nil || portOf(again, "80/tcp") != base {
		t.Fatalf("after a refusal: %+v %v, want %d", again, err, base)
	}
	done()

	// A range skips ports records hold and ports host processes listen on;
	// UDP ports are their own space.
	l, err := net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(base))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r, done, err := allocateWithin(t, &p, Bindings{
		"80/tcp": {{HostPort: fmt.Sprintf("%d-%d", base, base+2)}},
		"53/udp": {{HostPort: strconv.Itoa(base)}},
	}, held)
	if err != nil || portOf(r, "80/tcp") != base+2 || portOf(r, "53/udp") != base {
		t.Fatalf("range with %d listened on and %d held: %+v %v", base, base+1, r, err)
	}
	done()
	if _, _, err := allocateWithin(t, &p, Bindings{"80/tcp": {{HostPort: fmt.Sprintf("%d-%d", base, base+1)}}}, held); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf("Bind for 0.0.0.0:%d-%d failed", base, base+1)) {
		t.Fatalf("a range with nothing free: %v", err)
	}

	for _, bad := range []PortBinding{{HostIp: "nonsense"}, {HostPort: "70000"}, {HostPort: "9-3"}, {HostPort: "x"}} {
		if _, _, err := allocateWithin(t, &p, Bindings{"80/tcp": {bad}}, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: %v, want an invalid-argument error", bad, err)
		}
	}
	if _, _, err := allocateWithin(t, &p, Bindings{"80/sctp": {{HostIp: "::1"}}}, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("sctp on IPv6: %v, want an invalid-argument error", err)
	}
	if len(p.reserved) != 0 {
		t.Fatalf("reservations left after every create finished: %v", p.reserved)
	}
}
