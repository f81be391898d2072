package engine

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// The host port allocator: a port is given to one container only, free on
// the host (every address family its binding takes) when given, picked
// from the kernel's ephemeral range when none is asked for, rotating as
// dockerd's allocator does.

// ports hands out host ports: reserved holds those being given to
// containers still being created (not yet in a record).
type ports struct {
	mu       sync.Mutex
	reserved map[string]bool // "tcp/32768"
	next     int
}

// allocatePorts gives each wanted binding its host port. done must be
// called once the container's record holds them (or its create failed).
func (e *Engine) allocatePorts(want Bindings) (Bindings, func(), error) {
	return e.ports.allocate(want, e.heldPorts)
}

// allocate is allocatePorts with the ports containers' records hold given
// by heldBy, read under p.mu so that no create in flight goes unseen.
func (p *ports) allocate(want Bindings, heldBy func() map[string]bool) (Bindings, func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reserved == nil {
		p.reserved = map[string]bool{}
	}
	held := heldBy()
	var mine []string
	// unreserve runs with p.mu held; release is done's form, taking it.
	unreserve := func() {
		for _, k := range mine {
			delete(p.reserved, k)
		}
	}
	release := func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		unreserve()
	}
	out := Bindings{}
	dual := hostHasIPv6()
	for _, spec := range slices.Sorted(maps.Keys(want)) {
		_, proto, _ := portSpec(spec)
		for _, hb := range want[spec] {
			ip := hb.HostIp
			if ip == "0.0.0.0" {
				ip = "" // every IPv4 address, as portmap reads ""
			}
			// The addresses the binding takes: IPv4 (portmap's), IPv6
			// (the shim's), or for "" both, as dockerd publishes on 0.0.0.0
			// and :: when the host has IPv6.
			var addrs []string
			switch a := net.ParseIP(ip); {
			case ip == "":
				addrs = []string{""}
				if dual && hb.HostIp == "" && proto != "sctp" {
					addrs = append(addrs, "::")
				}
			case a == nil:
				unreserve()
				return nil, nil, fmt.Errorf("invalid host address %q for %s: %w", ip, spec, errdefs.ErrInvalidArgument)
			case a.To4() == nil && proto == "sctp":
				unreserve()
				return nil, nil, fmt.Errorf("publishing %s on the IPv6 address %s is not supported (sctp is published on IPv4 only): %w", spec, ip, errdefs.ErrInvalidArgument)
			default:
				addrs = []string{ip}
			}
			lo, hi, picked, err := hostPortRange(hb.HostPort, spec)
			if err != nil {
				unreserve()
				return nil, nil, err
			}
			port := 0
			free := func(n int) bool {
				k := proto + "/" + strconv.Itoa(n)
				if held[k] || p.reserved[k] {
					return false
				}
				for _, a := range addrs {
					if !bindable(proto, a, n) {
						return false
					}
				}
				return true
			}
			if picked {
				port = p.pick(lo, hi, free)
			} else {
				for n := lo; n <= hi && port == 0; n++ {
					if free(n) {
						port = n
					}
				}
			}
			if port == 0 {
				unreserve()
				return nil, nil, fmt.Errorf("Bind for %s:%s failed: port is already allocated", cmp.Or(hb.HostIp, "0.0.0.0"), cmp.Or(hb.HostPort, "0"))
			}
			k := proto + "/" + strconv.Itoa(port)
			p.reserved[k] = true
			mine = append(mine, k)
			for _, a := range addrs {
				out[spec] = append(out[spec], PortBinding{HostIp: a, HostPort: strconv.Itoa(port)})
			}
		}
	}
	return out, release, nil
}

// hostHasIPv6 says whether IPv6 ports can be published here.
func hostHasIPv6() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// hostPortRange reads a binding's HostPort: one port, a range "a-b", or
// none ("", "0": the daemon picks one from the ephemeral range).
func hostPortRange(hp, spec string) (lo, hi int, picked bool, err error) {
	if hp == "" || hp == "0" {
		lo, hi = ephemeralRange()
		return lo, hi, true, nil
	}
	a, b, isRange := strings.Cut(hp, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := lo, error(nil)
	if isRange {
		hi, err2 = strconv.Atoi(b)
	}
	if err1 != nil || err2 != nil || lo <= 0 || hi > 65535 || hi < lo {
		return 0, 0, false, fmt.Errorf("invalid host port %q for %s: want a port, a range a-b, or none: %w", hp, spec, errdefs.ErrInvalidArgument)
	}
	return lo, hi, false, nil
}

// pick is the next free port of [lo, hi] after the last one picked,
// wrapping once, as dockerd's allocator goes round its range.
func (p *ports) pick(lo, hi int, free func(int) bool) int {
	start := p.next
	if start < lo || start > hi {
		start = lo
	}
	for i := 0; i <= hi-lo; i++ {
		port := lo + (start-lo+i)%(hi-lo+1)
		if free(port) {
			p.next = port + 1
			return port
		}
	}
	return 0
}

// ephemeralRange is the kernel's ephemeral port range (dockerd's too).
func ephemeralRange() (int, int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
		lo, err1 := strconv.Atoi(f[0])
		hi, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil && lo > 0 && hi >= lo {
			return lo, hi
		}
	}
	return 32768, 60999
}

// bindable says whether port can be bound on the host (ip "" is every
// IPv4 address, "::" every IPv6 one): no host process has it.
func bindable(proto, ip string, port int) bool {
	addr := net.JoinHostPort(cmp.Or(ip, "0.0.0.0"), strconv.Itoa(port))
	family := "4"
	if a := net.ParseIP(ip); a != nil && a.To4() == nil {
		family = "6"
	}
	switch proto {
	case "udp":
		c, err := net.ListenPacket("udp"+family, addr)
		if err != nil {
			return false
		}
		c.Close()
	case "tcp":
		l, err := net.Listen("tcp"+family, addr)
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// heldPorts are the host ports Docker containers hold ("tcp/8080").
func (e *Engine) heldPorts() map[string]bool {
	held := map[string]bool{}
	all, _ := e.Containers()
	for _, c := range all {
		for spec, binds := range portsOf(c) {
			_, proto, _ := portSpec(spec)
			for _, hb := range binds {
				held[proto+"/"+hb.HostPort] = true
			}
		}
	}
	return held
}
