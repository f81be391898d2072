package shim

import (
	"encoding/binary"
	"io"
	"sync"
	"time"
)

// hub fans the main process's output out to attached clients. A client that
// cannot take output for a few seconds is dropped rather than allowed to
// stall the container (whose output also goes to the log).
type hub struct {
	mu   sync.Mutex
	subs map[*frameWriter]chan struct{} // closed when the client is done
}

func newHub() *hub { return &hub{subs: map[*frameWriter]chan struct{}{}} }

func (h *hub) add(fw *frameWriter) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	done := make(chan struct{})
	h.subs[fw] = done
	return done
}

func (h *hub) remove(fw *frameWriter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if done, ok := h.subs[fw]; ok {
		close(done)
		delete(h.subs, fw)
	}
}

// writer returns an io.Writer sending frames of typ to every client.
func (h *hub) writer(typ byte) io.Writer { return hubWriter{h, typ} }

type hubWriter struct {
	h   *hub
	typ byte
}

func (w hubWriter) Write(p []byte) (int, error) {
	w.h.mu.Lock()
	subs := make([]*frameWriter, 0, len(w.h.subs))
	for fw := range w.h.subs {
		subs = append(subs, fw)
	}
	w.h.mu.Unlock()
	for _, fw := range subs {
		if d, ok := fw.w.(interface{ SetWriteDeadline(time.Time) error }); ok {
			_ = d.SetWriteDeadline(time.Now().Add(5 * time.Second))
		}
		if _, err := (streamWriter{fw, w.typ}).Write(p); err != nil {
			w.h.remove(fw)
		}
	}
	return len(p), nil
}

// exit tells every client the exit code and lets them go.
func (h *hub) exit(code int32) {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], uint32(code))
	h.mu.Lock()
	defer h.mu.Unlock()
	for fw, done := range h.subs {
		_ = fw.write(frameExit, p[:])
		close(done)
		delete(h.subs, fw)
	}
}

// attach feeds the client's stdin frames to the main process and streams
// its output until it exits or the client goes.
func (s *server) attach(in io.Reader, fw *frameWriter, done <-chan struct{}) {
	select {
	case <-s.exited:
		_ = fw.write(frameError, []byte("the container has exited"))
		return
	default:
	}
	go func() {
		defer s.attached.remove(fw) // the client went: stop sending it output
		for {
			typ, p, err := readFrame(in)
			if err != nil {
				// A client gone without closing its stdin has detached
				// (docker's ctrl-p ctrl-q): a terminal's input stays open
				// for the next attach, as dockerd keeps it; pipes close.
				if s.master == nil {
					s.detachStdin()
				}
				return
			}
			switch typ {
			case frameStdin:
				s.stdinMu.Lock()
				if s.stdin != nil {
					_, _ = s.stdin.Write(p)
				}
				s.stdinMu.Unlock()
			case frameStdinClose:
				s.detachStdin()
			case frameResize:
				if sz, err := parseResize(p); err == nil && s.master != nil {
					_ = resizePty(s.master, sz)
				}
			}
		}
	}()
	<-done
}

// detachStdin is called when an attached client's input ends: with
// StdinOnce the container's stdin closes for good, as the CRI says.
func (s *server) detachStdin() {
	s.stdinMu.Lock()
	defer s.stdinMu.Unlock()
	if !s.cfg.StdinOnce || s.stdin == nil {
		return
	}
	if s.stdin == s.master {
		_, _ = s.master.Write([]byte{4}) // ^D: end of input on a terminal
	} else {
		s.stdin.Close()
	}
	s.stdin = nil
}
