package engine

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/errdefs"
	"github.com/berth-runtime/berth/internal/store"
)

// Attaching to a container (`docker run` without -d, `docker attach`):
// without a terminal its output comes from its log (logs.go), so that an
// attach made before the start misses nothing, and its stdin goes through
// the shim once it runs; with a terminal the shim's attach carries both,
// and the client's resizes reach it through terminals.

// terminals are the resize channels of the attaches to containers that
// have a terminal: `docker run -it` sends its size once attached, and
// again on every SIGWINCH.
type terminals struct {
	mu sync.Mutex
	m  map[string]chan Size
}

func (t *terminals) open(id string) chan Size {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]chan Size{}
	}
	ch := make(chan Size, 1)
	t.m[id] = ch
	return ch
}

func (t *terminals) close(id string, ch chan Size) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[id] == ch {
		delete(t.m, id)
	}
}

// Resize is the client's terminal size for c's attach.
func (e *Engine) Resize(c store.Container, sz Size) {
	e.terms.mu.Lock()
	ch := e.terms.m[c.ID]
	e.terms.mu.Unlock()
	if ch != nil {
		sendLatest(ch, sz)
	}
}

// CheckAttach refuses an attach to stdin of a container made without it open.
func (e *Engine) CheckAttach(c store.Container, stdin bool) error {
	if stdin && !StdinOpen(c) {
		return fmt.Errorf("container %s was not created with stdin open (-i): %w", c.Name, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// AttachStdin carries the client's stdin to c once it runs.
func (e *Engine) AttachStdin(ctx context.Context, c store.Container, in io.Reader) {
	rec, gone, err := e.WaitFor(ctx, c.ID, func(rec store.Container, gone bool) bool {
		return gone || rec.State != store.ContainerCreated
	})
	if err != nil || gone || rec.State != store.ContainerRunning {
		return
	}
	if _, err := e.containers.Attach(ctx, c.ID, containers.StreamOpts{Stdin: in}); err != nil {
		e.log.Debug("docker attach: stdin", "container", c.ID, "error", err)
	}
}

// AttachTerminal attaches s to c's terminal until the attach ends; ready
// is called once the shim has taken the attach (output from then on is
// not lost). Resizes sent meanwhile reach the terminal.
func (e *Engine) AttachTerminal(ctx context.Context, c store.Container, s Streams, ready func()) error {
	resize := e.terms.open(c.ID)
	defer e.terms.close(c.ID, resize)
	o := containers.StreamOpts{Tty: true, Resize: resize, Ready: ready, Stdin: s.Stdin, Stdout: s.Stdout}
	_, err := e.containers.Attach(ctx, c.ID, o)
	return err
}
