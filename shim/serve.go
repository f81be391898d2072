package shim

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

func (s *server) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{ID: s.cfg.ID, Pid: s.pid, Running: s.exit == nil && !s.started.IsZero(), Started: s.started, Exit: s.exit}
}

func (s *server) serve(ctx context.Context) error {
	go func() {
		select {
		case <-ctx.Done():
		case <-s.done:
		}
		s.ln.Close()
	}()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				s.log.Close()
				return nil
			default:
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("accept: %w", err)
		}
		go s.handle(ctx, c)
	}
}

func (s *server) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	var req Request
	dec := json.NewDecoder(c)
	if err := dec.Decode(&req); err != nil {
		return
	}
	if req.Op == OpAttach || req.Op == OpExecStream {
		// From here on the connection carries frames (stream.go); what the
		// decoder read ahead belongs to them.
		fw := &frameWriter{w: c}
		var attached <-chan struct{}
		if req.Op == OpAttach && checkVersion(req) == nil {
			// Subscribed before the version frame goes out: a client that
			// has read it misses none of the output (docker run -it
			// attaches, then starts the container).
			attached = s.attached.add(fw)
			defer s.attached.remove(fw)
		}
		var v [4]byte
		binary.BigEndian.PutUint32(v[:], ProtocolVersion)
		_ = fw.write(frameVersion, v[:])
		if err := checkVersion(req); err != nil {
			_ = fw.write(frameError, []byte(err.Error()))
			return
		}
		ahead, _ := io.ReadAll(dec.Buffered())
		in := io.MultiReader(bytes.NewReader(bytes.TrimLeft(ahead, " \t\r\n")), c)
		if req.Op == OpAttach {
			s.attach(in, fw, attached)
			return
		}
		if len(req.Args) == 0 {
			_ = fw.write(frameError, []byte("exec-stream: no command"))
			return
		}
		if err := s.execStream(ctx, in, fw, req); err != nil {
			_ = fw.write(frameError, []byte(err.Error()))
		}
		return
	}
	resp := s.dispatch(ctx, req)
	_ = json.NewEncoder(c).Encode(resp)
	if req.Op == OpDelete && resp.Error == "" {
		close(s.done)
	}
}

func (s *server) dispatch(ctx context.Context, req Request) Response {
	if err := checkVersion(req); err != nil {
		return Response{Version: ProtocolVersion, Error: err.Error()}
	}
	var err error
	switch req.Op {
	case OpState:
	case OpStart:
		s.mu.Lock()
		if s.exit != nil {
			s.mu.Unlock()
			err = errors.New("container has exited: it cannot be started")
			break
		}
		s.mu.Unlock()
		// Stamped before the call: a quick process can exit, and be stamped
		// exited, before "start" returns.
		at := time.Now().UTC()
		if err = s.startContainer(ctx); err == nil {
			s.mu.Lock()
			s.started = at
			s.mu.Unlock()
		}
	case OpKill:
		select {
		case <-s.exited:
			// Nothing to signal; stopping a stopped container is not an error.
		default:
			err = s.rt.Kill(ctx, s.cfg.ID, req.Signal, req.All)
			if err != nil && s.status().Exit != nil {
				err = nil // it exited while we were signalling it
			}
		}
	case OpWait:
		select {
		case <-s.exited:
		case <-ctx.Done():
			err = ctx.Err()
		}
	case OpDelete:
		err = s.delete(ctx)
	case OpExec:
		var res *ExecResult
		if res, err = s.execSync(ctx, req.Args, req.Timeout); err == nil {
			return Response{Version: ProtocolVersion, Status: s.status(), Exec: res}
		}
	case OpReopenLog:
		err = s.log.reopen(s.cfg.LogPath)
	case OpUpdate:
		err = s.rt.Update(ctx, s.cfg.ID, req.Resources)
	case OpPause:
		err = s.rt.Pause(ctx, s.cfg.ID)
	case OpResume:
		err = s.rt.Resume(ctx, s.cfg.ID)
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	r := Response{Version: ProtocolVersion, Status: s.status()}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// checkVersion refuses a request that needs a newer protocol than this shim's.
func checkVersion(req Request) error { return checkVersionOf(req, ProtocolVersion) }

// checkVersionOf is checkVersion for a shim speaking version speaks (a test
// plays an older shim with it).
func checkVersionOf(req Request, speaks int) error {
	if req.Version > speaks {
		return fmt.Errorf("%s needs shim protocol version %d; this shim speaks %d (restart the container to move it to the new shim)", req.Op, req.Version, speaks)
	}
	return nil
}
