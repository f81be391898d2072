package shim

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// Forward is a host port the shim carries to the container itself, as
// dockerd's docker-proxy does: Berth's pods have IPv4 addresses only and
// CNI's portmap rewrites IPv4 alone, so a port published on an IPv6 host
// address ("::", "::1") is served here, in the process that outlives
// berthd, and lives as long as the container's shim.
type Forward struct {
	Proto    string `json:"proto"` // tcp or udp
	HostIP   string `json:"hostIp"`
	HostPort int    `json:"hostPort"`
	// Target is the container's address and port ("10.88.0.5:80").
	Target string `json:"target"`
}

// udpIdle is how long a UDP client's flow stays without traffic, as
// docker-proxy keeps its own.
const udpIdle = 90 * time.Second

// forwarders are the listening ends of a shim's forwards.
type forwarders struct {
	tcp []net.Listener
	udp []*net.UDPConn
}

// listenForwards binds every forward's host port (IPv6 only: the IPv4
// side of a port is portmap's), so that a port another process holds
// fails the container's create rather than its traffic.
func listenForwards(fs []Forward) (*forwarders, error) {
	f := &forwarders{}
	for _, fw := range fs {
		addr := net.JoinHostPort(fw.HostIP, strconv.Itoa(fw.HostPort))
		var err error
		switch fw.Proto {
		case "tcp":
			var l net.Listener
			if l, err = net.Listen("tcp6", addr); err == nil {
				f.tcp = append(f.tcp, l)
			}
		case "udp":
			var ua *net.UDPAddr
			if ua, err = net.ResolveUDPAddr("udp6", addr); err == nil {
				var c *net.UDPConn
				if c, err = net.ListenUDP("udp6", ua); err == nil {
					f.udp = append(f.udp, c)
				}
			}
		default:
			err = fmt.Errorf("protocol %q cannot be forwarded", fw.Proto)
		}
		if err != nil {
			f.close()
			return nil, fmt.Errorf("publish %s/%s: %w", addr, fw.Proto, err)
		}
	}
	return f, nil
}

// serve carries traffic to the targets (fs in listenForwards' order) until
// done is closed.
func (f *forwarders) serve(fs []Forward, done <-chan struct{}) {
	ti, ui := 0, 0
	for _, fw := range fs {
		switch fw.Proto {
		case "tcp":
			go serveTCP(f.tcp[ti], fw.Target)
			ti++
		case "udp":
			go serveUDP(f.udp[ui], fw.Target)
			ui++
		}
	}
	<-done
	f.close()
}

func (f *forwarders) close() {
	for _, l := range f.tcp {
		l.Close()
	}
	for _, c := range f.udp {
		c.Close()
	}
}

func serveTCP(l net.Listener, target string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				return // the client sees its connection closed, as with docker-proxy
			}
			defer up.Close()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); copyHalf(up, c) }()
			copyHalf(c, up)
			wg.Wait()
		}()
	}
}

// copyHalf copies one direction and passes its end on (a half close), so
// that request/response protocols finish.
func copyHalf(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		dst.Close()
	}
}

// serveUDP keeps a flow (a socket to the target) for each client address,
// dropped after udpIdle without a datagram either way.
func serveUDP(c *net.UDPConn, target string) {
	var mu sync.Mutex
	flows := map[string]*net.UDPConn{}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				mu.Lock()
				for _, up := range flows {
					up.Close()
				}
				mu.Unlock()
				return
			}
			continue
		}
		mu.Lock()
		up, ok := flows[from.String()]
		if !ok {
			d, err := net.Dial("udp", target)
			if err != nil {
				mu.Unlock()
				continue
			}
			up = d.(*net.UDPConn)
			flows[from.String()] = up
			go func(client *net.UDPAddr) {
				reply := make([]byte, 64<<10)
				for {
					_ = up.SetReadDeadline(time.Now().Add(udpIdle))
					m, err := up.Read(reply)
					if err != nil {
						break
					}
					_, _ = c.WriteToUDP(reply[:m], client)
				}
				mu.Lock()
				delete(flows, client.String())
				mu.Unlock()
				up.Close()
			}(from)
		}
		mu.Unlock()
		_ = up.SetReadDeadline(time.Now().Add(udpIdle))
		_, _ = up.Write(buf[:n])
	}
}
