package cri

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/sandbox"
)

// Streaming is the CRI streaming server (k8s.io/cri-streaming): Exec,
// Attach and PortForward answer with a URL on it, which kubelet's clients
// then speak SPDY or websockets to.
type Streaming struct {
	srv  streaming.Server
	http *http.Server
	ln   net.Listener
}

// NewStreaming listens on addr ("127.0.0.1:0" for an ephemeral port).
func NewStreaming(addr string, c *containers.Service, sb *sandbox.Service, log *slog.Logger) (*Streaming, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = ln.Addr().String()
	cfg.BaseURL = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	srv, err := streaming.NewServer(cfg, &streamRuntime{containers: c, sandboxes: sb})
	if err != nil {
		ln.Close()
		return nil, err
	}
	log.Info("streaming server listening", slog.String("address", cfg.Addr))
	return &Streaming{srv: srv, ln: ln, http: &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}}, nil
}

// Serve serves until Close.
func (s *Streaming) Serve() error {
	if err := s.http.Serve(s.ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// Close stops the server and its streams.
func (s *Streaming) Close() error { return s.http.Close() }

// streamRuntime adapts the services to cri-streaming's Runtime.
type streamRuntime struct {
	containers *containers.Service
	sandboxes  *sandbox.Service
}

func (r *streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	o := containers.StreamOpts{Args: cmd, Tty: tty, Stdin: in, Resize: sizes(resize)}
	if out != nil {
		o.Stdout = out
	}
	if errOut != nil {
		o.Stderr = errOut
	}
	code, err := r.containers.ExecStream(ctx, id, o)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q exited with %d", cmd, code), Code: int(code)}
	}
	return nil
}

func (r *streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	o := containers.StreamOpts{Tty: tty, Stdin: in, Resize: sizes(resize)}
	if out != nil {
		o.Stdout = out
	}
	if errOut != nil {
		o.Stderr = errOut
	}
	// The session ends when the process does; its exit code is the
	// container's status, not an attach error (as with containerd).
	_, err := r.containers.Attach(ctx, id, o)
	return err
}

func (r *streamRuntime) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	return r.sandboxes.PortForward(ctx, podSandboxID, port, stream)
}

// sizes converts cri-streaming's resize channel to the shim's.
func sizes(in <-chan remotecommandserver.TerminalSize) <-chan containers.Size {
	if in == nil {
		return nil
	}
	out := make(chan containers.Size, 1)
	go func() {
		defer close(out)
		for s := range in {
			out <- containers.Size{Height: s.Height, Width: s.Width}
		}
	}()
	return out
}

// Exec answers with the URL of a streaming exec session.
func (s *Server) Exec(ctx context.Context, r *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(r.Cmd) == 0 {
		return nil, invalid("Exec: cmd is required")
	}
	id, err := s.streamTarget("Exec", r.ContainerId, r.Stdin || r.Stdout || r.Stderr)
	if err != nil {
		return nil, err
	}
	r.ContainerId = id
	return s.streaming.srv.GetExec(r)
}

// Attach answers with the URL of a session attached to the container's process.
func (s *Server) Attach(ctx context.Context, r *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	id, err := s.streamTarget("Attach", r.ContainerId, r.Stdin || r.Stdout || r.Stderr)
	if err != nil {
		return nil, err
	}
	r.ContainerId = id
	return s.streaming.srv.GetAttach(r)
}

// streamTarget checks what Exec and Attach share: a container that exists
// (by ID or unique prefix) and at least one stream.
func (s *Server) streamTarget(call, ref string, anyStream bool) (string, error) {
	if ref == "" {
		return "", invalid(call + ": container_id is required")
	}
	if !anyStream {
		return "", invalid(call + ": one of stdin, stdout and stderr must be set")
	}
	id, err := s.containerID(ref)
	if err != nil {
		return "", toStatus(err)
	}
	return id, nil
}

// PortForward answers with the URL of a port-forward session into the pod.
func (s *Server) PortForward(ctx context.Context, r *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if r.PodSandboxId == "" {
		return nil, invalid("PortForward: pod_sandbox_id is required")
	}
	id, err := s.sandboxID(r.PodSandboxId)
	if err != nil {
		return nil, toStatus(err)
	}
	r.PodSandboxId = id
	return s.streaming.srv.GetPortForward(r)
}
