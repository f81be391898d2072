package dockerapi

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// BuildKit is the builder behind /grpc and /session (buildx's docker
// driver, the docker CLI's default build): it takes over the connections.
type BuildKit interface {
	ServeConn(ctx context.Context, conn net.Conn) error
	HandleSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error
}

// SetBuildKit serves BuildKit on /grpc and /session, and says so on /_ping.
func (s *Server) SetBuildKit(b BuildKit) { s.buildkit = b }

// buildkitGRPC is /grpc: dockerd's way to BuildKit's control API, the
// connection upgraded to HTTP/2 without TLS (h2c) and handed over.
func (s *Server) buildkitGRPC(w http.ResponseWriter, r *http.Request) {
	if s.buildkit == nil {
		writeError(w, fmt.Errorf("BuildKit is off on this daemon: build with DOCKER_BUILDKIT=0 (the classic builder): %w", errdefs.ErrUnimplemented))
		return
	}
	if r.Header.Get("Upgrade") != "h2c" {
		writeError(w, fmt.Errorf("/grpc needs an Upgrade: h2c request: %w", errdefs.ErrInvalidArgument))
		return
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, fmt.Errorf("/grpc: %w", err))
		return
	}
	if _, err := conn.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")); err != nil {
		conn.Close()
		return
	}
	if err := s.buildkit.ServeConn(r.Context(), bufferedConn{Conn: conn, r: buf.Reader}); err != nil {
		s.log.Warn("BuildKit", "error", err)
	}
}

// buildkitSession is /session: the client's session (its build context,
// secrets, SSH agent, outputs), which BuildKit calls back through.
func (s *Server) buildkitSession(w http.ResponseWriter, r *http.Request) {
	if s.buildkit == nil {
		writeError(w, fmt.Errorf("BuildKit is off on this daemon: %w", errdefs.ErrUnimplemented))
		return
	}
	if err := s.buildkit.HandleSession(r.Context(), w, r); err != nil {
		s.log.Warn("BuildKit session", "error", err)
	}
}

// bufferedConn reads first what the HTTP server had read past the request.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
