package sandbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
)

// PortForward connects stream to port on the pod's loopback, inside its
// network namespace, and copies both ways until either side ends.
func (s *Service) PortForward(ctx context.Context, id string, port int32, stream io.ReadWriteCloser) error {
	rec, err := s.Get(id)
	if err != nil {
		return err
	}
	netns := rec.Namespaces["net"]
	var conn net.Conn
	if netns == "" {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	} else {
		conn, err = dialInNetns(ctx, netns, port)
	}
	if err != nil {
		return fmt.Errorf("port-forward to %s:%d: %w", id, port, err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(conn, stream)
		if c, ok := conn.(*net.TCPConn); ok {
			_ = c.CloseWrite()
		}
	}()
	_, _ = io.Copy(stream, conn)
	stream.Close()
	wg.Wait()
	return nil
}

// dialInNetns opens the connection from a thread inside the namespace: a
// socket belongs to the network namespace of the thread that creates it. The
// thread stays locked, so the Go runtime discards it afterwards.
func dialInNetns(ctx context.Context, netns string, port int32) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		if err := enterNetns(netns); err != nil {
			ch <- res{nil, err}
			return
		}
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
