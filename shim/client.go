package shim

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/spawn"
)

// ErrShimGone means the shim's socket does not answer: the shim has exited.
var ErrShimGone = errors.New("shim is not running")

// Client talks to one shim.
type Client struct {
	Socket string
	// Pid is the shim's process ID when this client spawned it, else 0.
	Pid int
	// Timeout bounds calls (see bounded): a shim that is stopped or stuck
	// must never hang its caller.
	Timeout time.Duration
	// Sent, when set, is called once a request is on its way (or could not
	// be sent): a caller bounding how many shims it dials at once frees its
	// slot there, not when a long call (Wait) ends.
	Sent func()
}

// DefaultTimeout is Client.Timeout when it is zero.
const DefaultTimeout = 10 * time.Second

// Spawn writes cfg into dir, starts the shim binary there (from sp's thread;
// nil: the caller's) and waits until it has created the container (or
// failed to, with the runtime's reason).
func Spawn(ctx context.Context, sp *spawn.Spawner, shimBin, dir string, cfg Config) (*Client, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o600); err != nil {
		return nil, fmt.Errorf("write shim config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Socket), 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, ShimLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()
	// Its own session: a signal to berthd's process group never reaches it.
	p, err := sp.Start(spawn.Cmd{
		Path: shimBin, Args: []string{shimBin, "--dir", dir}, Env: os.Environ(), Dir: dir,
		Files: []*os.File{nil, logf, logf, readyW}, Sys: &syscall.SysProcAttr{Setsid: true},
	})
	readyW.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", shimBin, err)
	}
	// Reap the shim when it ends while we run; after a berthd restart it is
	// init's or the subreaper's to reap.
	go func() { _, _ = p.Wait() }()

	if err := spawn.AwaitReady(ctx, readyR, p, "shim", filepath.Join(dir, ShimLog)); err != nil {
		return nil, err
	}
	return &Client{Socket: cfg.Socket, Pid: p.Pid}, nil
}

func (c *Client) call(ctx context.Context, req Request) (Status, error) {
	resp, err := c.do(ctx, req)
	return resp.Status, err
}

func (c *Client) do(ctx context.Context, req Request) (Response, error) {
	req.Version = req.version()
	if bounded(ctx, req.Op) {
		timeout := c.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var resp Response
	if err := c.roundTrip(ctx, req, &resp); err != nil {
		return Response{}, err
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("shim %s: %s", req.Op, resp.Error)
	}
	return resp, nil
}

// bounded says whether a call gets Client.Timeout. Ops a healthy shim answers
// at once always do, even within a longer deadline of the caller's (kubelet's
// is two minutes), so that a stuck shim is reported while the caller still
// listens. Start and delete run the runtime and its hooks: they get it only
// when the caller set no deadline. Wait, exec and streams last as long as
// what they wait for and are bounded by their callers.
func bounded(ctx context.Context, op string) bool {
	switch op {
	case OpState, OpKill, OpReopenLog, OpUpdate, OpPause, OpResume:
		return true
	case OpStart, OpDelete:
		_, has := ctx.Deadline()
		return !has
	}
	return false
}

// Hello asks the shim for its status and the protocol version it speaks.
func (c *Client) Hello(ctx context.Context) (Status, int, error) {
	resp, err := c.do(ctx, Request{Op: OpState})
	return resp.Status, max(resp.Version, 1), err
}

// roundTrip sends one request on a fresh connection and reads the answer.
func (c *Client) roundTrip(ctx context.Context, req Request, resp *Response) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		if c.Sent != nil {
			c.Sent()
		}
		return fmt.Errorf("%w: %v", ErrShimGone, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	err = json.NewEncoder(conn).Encode(req)
	if c.Sent != nil {
		c.Sent()
	}
	if err != nil {
		return fmt.Errorf("shim %s: %w", req.Op, err)
	}
	if err := json.NewDecoder(conn).Decode(resp); err != nil {
		if ctx.Err() != nil {
			// A shim that took the connection but not the request: stopped,
			// stuck or starved. Callers test for context.DeadlineExceeded.
			return fmt.Errorf("shim %s: no answer: %w", req.Op, ctx.Err())
		}
		return fmt.Errorf("shim %s: %w: %v", req.Op, ErrShimGone, err)
	}
	return nil
}

// State returns the container's status.
func (c *Client) State(ctx context.Context) (Status, error) { return c.call(ctx, Request{Op: OpState}) }

// Start starts the created container.
func (c *Client) Start(ctx context.Context) (Status, error) { return c.call(ctx, Request{Op: OpStart}) }

// Kill signals the container's init, or all its processes.
func (c *Client) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	_, err := c.call(ctx, Request{Op: OpKill, Signal: int(sig), All: all})
	return err
}

// Wait blocks until the container has exited, or ctx ends.
func (c *Client) Wait(ctx context.Context) (Status, error) { return c.call(ctx, Request{Op: OpWait}) }

// Delete removes the container from the runtime (killing it if needed); the shim then exits.
func (c *Client) Delete(ctx context.Context) error {
	_, err := c.call(ctx, Request{Op: OpDelete})
	return err
}

// Exec runs args in the container and returns what it did.
func (c *Client) Exec(ctx context.Context, args []string, timeout time.Duration) (*ExecResult, error) {
	resp, err := c.do(ctx, Request{Op: OpExec, Args: args, Timeout: timeout})
	if err != nil {
		return nil, err
	}
	return resp.Exec, nil
}

// StreamOpts are an interactive exec's streams. Stdin may be nil; with Tty,
// the terminal's output all comes on Stdout.
type StreamOpts struct {
	Args []string
	// Env, Cwd and User change the process from the container's own.
	Env            []string
	Cwd            string
	User           *ExecUser
	Tty            bool
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Resize delivers terminal sizes; the first, if any, is the initial one.
	Resize <-chan Size
	// Ready, if set, is called once the shim has taken the stream: for an
	// attach, from then on no output is missed.
	Ready func()
}

// Attach streams the main process's output to o's writers and o.Stdin to its
// stdin, until it exits (returning its exit code) or ctx ends.
func (c *Client) Attach(ctx context.Context, o StreamOpts) (int32, error) {
	return c.stream(ctx, Request{Op: OpAttach}, o)
}

// ExecStream runs a process in the container with its streams wired to o's,
// and returns its exit code when it ends.
func (c *Client) ExecStream(ctx context.Context, o StreamOpts) (int32, error) {
	return c.stream(ctx, Request{Op: OpExecStream, Args: o.Args, Tty: o.Tty, Env: o.Env, Cwd: o.Cwd, User: o.User}, o)
}

func (c *Client) stream(ctx context.Context, req Request, o StreamOpts) (int32, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrShimGone, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	req.Version, req.Stdin = req.version(), o.Stdin != nil
	if o.Resize != nil && o.Tty && req.Op == OpExecStream {
		select {
		case sz := <-o.Resize:
			req.Size = &sz
		default:
		}
	}
	b, err := json.Marshal(req) // no trailing newline: frames follow at once
	if err != nil {
		return 0, err
	}
	if _, err := conn.Write(b); err != nil {
		return 0, fmt.Errorf("shim %s: %w", req.Op, err)
	}
	fw := &frameWriter{w: conn}
	if o.Stdin != nil {
		go func() {
			_, _ = io.Copy(streamWriter{fw, frameStdin}, o.Stdin)
			_ = fw.write(frameStdinClose, nil)
		}()
	}
	if o.Resize != nil {
		go func() {
			for sz := range o.Resize {
				if fw.write(frameResize, resizePayload(sz)) != nil {
					return
				}
			}
		}()
	}
	for {
		typ, p, err := readFrame(conn)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("shim %s: %w: %v", req.Op, ErrShimGone, err)
		}
		switch typ {
		case frameVersion:
			if o.Ready != nil {
				o.Ready()
			}
		case frameStdout:
			if o.Stdout != nil {
				_, _ = o.Stdout.Write(p)
			}
		case frameStderr:
			if o.Stderr != nil {
				_, _ = o.Stderr.Write(p)
			}
		case frameExit:
			if len(p) != 4 {
				return 0, fmt.Errorf("shim %s: bad exit frame", req.Op)
			}
			return int32(binary.BigEndian.Uint32(p)), nil
		case frameError:
			return 0, fmt.Errorf("shim %s: %s", req.Op, p)
		}
	}
}

// Update changes the container's limits (LinuxResources JSON).
func (c *Client) Update(ctx context.Context, resources []byte) error {
	_, err := c.call(ctx, Request{Op: OpUpdate, Resources: resources})
	return err
}

// Pause freezes the container.
func (c *Client) Pause(ctx context.Context) error {
	_, err := c.call(ctx, Request{Op: OpPause})
	return err
}

// Resume thaws the container.
func (c *Client) Resume(ctx context.Context) error {
	_, err := c.call(ctx, Request{Op: OpResume})
	return err
}

// ReopenLog makes the shim reopen the container's log file.
func (c *Client) ReopenLog(ctx context.Context) error {
	_, err := c.call(ctx, Request{Op: OpReopenLog})
	return err
}

// ServerPid is the process that listens on the shim's socket: the shim,
// found even when it is stopped (the kernel completes the connection for it).
func (c *Client) ServerPid() (int, error) {
	conn, err := net.DialTimeout("unix", c.Socket, time.Second)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrShimGone, err)
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) { cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("shim socket %s: %w", c.Socket, serr)
	}
	return int(cred.Pid), nil
}

// ReadExit reads the exit a shim recorded in dir, for when the shim is gone.
func ReadExit(dir string) (*Exit, error) {
	b, err := os.ReadFile(filepath.Join(dir, ExitFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("exit file in %s: %w", dir, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var e Exit
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("exit file in %s: %w", dir, err)
	}
	return &e, nil
}
