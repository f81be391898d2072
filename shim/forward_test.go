package shim

import (
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// Forwards carry TCP (both halves) and UDP from an IPv6 host port to an
// IPv4 target, and let the port go when the shim ends.
func TestForwards(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		l.Close()
	}
	// The targets: a TCP server answering after the client's half close,
	// and a UDP echo.
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			b, _ := io.ReadAll(c)
			_, _ = c.Write(append([]byte("got "), b...))
			c.Close()
		}
	}()
	ul, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := ul.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = ul.WriteTo(append([]byte("echo "), buf[:n]...), from)
		}
	}()

	tcpPort, udpPort := freeV6(t, "tcp"), freeV6(t, "udp")
	fs := []Forward{
		{Proto: "tcp", HostIP: "::1", HostPort: tcpPort, Target: tl.Addr().String()},
		{Proto: "udp", HostIP: "::1", HostPort: udpPort, Target: ul.LocalAddr().String()},
	}
	f, err := listenForwards(fs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := listenForwards(fs[:1]); err == nil {
		t.Fatal("a second shim bound the same port")
	}
	done := make(chan struct{})
	served := make(chan struct{})
	go func() { f.serve(fs, done); close(served) }()

	c, err := net.Dial("tcp6", net.JoinHostPort("::1", strconv.Itoa(tcpPort)))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("ping"))
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, _ := io.ReadAll(c); string(b) != "got ping" {
		t.Fatalf("over TCP: %q", b)
	}
	c.Close()

	u, err := net.Dial("udp6", net.JoinHostPort("::1", strconv.Itoa(udpPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_ = u.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 100)
	for _, msg := range []string{"one", "two"} {
		_, _ = u.Write([]byte(msg))
		n, err := u.Read(buf)
		if err != nil || string(buf[:n]) != "echo "+msg {
			t.Fatalf("over UDP: %q %v", buf[:n], err)
		}
	}

	close(done)
	<-served
	if again, err := listenForwards(fs); err != nil {
		t.Fatalf("the ports were not let go: %v", err)
	} else {
		again.close()
	}
}

func freeV6(t *testing.T, proto string) int {
	t.Helper()
	if proto == "udp" {
		c, err := net.ListenPacket("udp6", "[::1]:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
