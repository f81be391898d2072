package dockerapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// terminals are the resize channels of the attaches to containers that
// have a terminal: `docker run -it` sends its size to /containers/{id}/resize
// once attached, and again on every SIGWINCH.
type terminals struct {
	mu sync.Mutex
	m  map[string]chan containers.Size
}

func (t *terminals) open(id string) chan containers.Size {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]chan containers.Size{}
	}
	ch := make(chan containers.Size, 1)
	t.m[id] = ch
	return ch
}

func (t *terminals) close(id string, ch chan containers.Size) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[id] == ch {
		delete(t.m, id)
	}
}

func (t *terminals) resize(id string, sz containers.Size) {
	t.mu.Lock()
	ch := t.m[id]
	t.mu.Unlock()
	if ch != nil {
		sendLatest(ch, sz)
	}
}

func (s *Server) resizeContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	sz, err := sizeParams(r)
	if err != nil {
		writeError(w, err)
		return
	}
	s.terms.resize(c.ID, sz)
	w.WriteHeader(http.StatusOK)
}

// sizeParams reads a resize's h and w.
func sizeParams(r *http.Request) (containers.Size, error) {
	q := r.URL.Query()
	h, errH := strconv.ParseUint(q.Get("h"), 10, 16)
	wd, errW := strconv.ParseUint(q.Get("w"), 10, 16)
	if errH != nil || errW != nil {
		return containers.Size{}, fmt.Errorf("invalid terminal size h=%q w=%q: %w", q.Get("h"), q.Get("w"), errdefs.ErrInvalidArgument)
	}
	return containers.Size{Height: uint16(h), Width: uint16(wd)}, nil
}

// attachTerminal is attach for a container with a terminal: a raw stream
// straight from the shim's attach (the terminal's bytes as they come, the
// prompt without its newline too), stdin through the detach keys, resizes.
// The shim has taken the attach before the client hears 101, so that the
// start the client sends next loses no output.
func (s *Server) attachTerminal(w http.ResponseWriter, r *http.Request, c store.Container, withStdin bool) {
	keys, err := parseDetachKeys(r.URL.Query().Get("detachKeys"))
	if err != nil {
		writeError(w, err)
		return
	}
	conn, buf, ok := takeOver(w)
	if !ok {
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	resize := s.terms.open(c.ID)
	defer s.terms.close(c.ID, resize)
	ready := make(chan struct{})
	var once sync.Once
	o := containers.StreamOpts{Tty: true, Resize: resize, Ready: func() { once.Do(func() { close(ready) }) }}
	if boolParam(r, "stdout") || boolParam(r, "stderr") {
		o.Stdout = conn
	}
	var stdin *io.PipeWriter
	if withStdin {
		o.Stdin, stdin = io.Pipe()
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.containers.Attach(ctx, c.ID, o)
		done <- err
	}()
	select {
	case <-ready:
	case err := <-done:
		respondRaw(buf, http.StatusConflict, err)
		return
	case <-time.After(10 * time.Second):
		respondRaw(buf, http.StatusGatewayTimeout, errors.New("the container's shim did not take the attach"))
		return
	}
	if err := writeUpgrade(buf, r, "application/vnd.docker.raw-stream"); err != nil {
		return
	}
	if withStdin {
		go func() {
			// The detach keys or the end of the client's input end the
			// attach, not the container's input: a terminal's stays open
			// for the next attach, as dockerd keeps it (only a container
			// without a terminal sees its stdin end with the client's).
			_, _ = io.Copy(stdin, &detachReader{r: buf.Reader, keys: keys})
			cancel()
		}()
	}
	<-done
	if stdin != nil {
		stdin.CloseWithError(errDetached) // the shim's connection is closed by now: nothing more is sent
	}
}

// respondRaw answers an error on a connection already taken over.
func respondRaw(buf *bufio.ReadWriter, code int, err error) {
	msg := strings.ReplaceAll(strings.TrimSuffix(err.Error(), ": "+errdefs.ErrFailedPrecondition.Error()), `"`, `'`)
	body := fmt.Sprintf("{\"message\":%q}\n", msg)
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", code, http.StatusText(code), len(body), body)
	_ = buf.Flush()
}

var errDetached = errors.New("detached")

// detachReader passes input through until it sees the detach keys, which it
// swallows and answers with errDetached. Bytes that begin the sequence but do
// not finish it are passed on.
type detachReader struct {
	r       io.Reader
	keys    []byte
	matched int
	pending []byte
	err     error
}

func (d *detachReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 && d.err == nil {
		buf := make([]byte, len(p))
		n, err := d.r.Read(buf)
		for _, b := range buf[:n] {
			if len(d.keys) > 0 && b == d.keys[d.matched] {
				if d.matched++; d.matched == len(d.keys) {
					return copy(p, d.pending), errDetached
				}
				continue
			}
			d.pending = append(d.pending, d.keys[:d.matched]...)
			d.matched = 0
			if len(d.keys) > 0 && b == d.keys[0] {
				d.matched = 1
				continue
			}
			d.pending = append(d.pending, b)
		}
		if d.err = err; err != nil {
			d.pending, d.matched = append(d.pending, d.keys[:d.matched]...), 0
		}
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	if len(d.pending) == 0 && d.err != nil {
		return n, d.err
	}
	return n, nil
}

// parseDetachKeys reads Docker's detach keys ("ctrl-p,ctrl-q", the default
// when none are given; "a", "ctrl-@", "ctrl-[" ...).
func parseDetachKeys(spec string) ([]byte, error) {
	if spec == "" {
		return []byte{16, 17}, nil
	}
	var out []byte
	for _, k := range strings.Split(spec, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case len(k) == 6 && strings.HasPrefix(strings.ToLower(k), "ctrl-"):
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c >= 'A' && c <= 'Z':
				out = append(out, c-'A'+1)
			case c >= '@' && c <= '_':
				out = append(out, c-'@')
			default:
				return nil, fmt.Errorf("invalid detach keys %q: %w", spec, errdefs.ErrInvalidArgument)
			}
		default:
			return nil, fmt.Errorf("invalid detach keys %q: %w", spec, errdefs.ErrInvalidArgument)
		}
	}
	return out, nil
}
