package spawn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// The ready pipe: a process berthd starts to outlive it (a shim,
// berth-lazyfs) gets the write end as fd 3 and writes one message, "ok"
// or "error: " and why, once it serves; berthd reads it to the pipe's close.

// ReadyPipe is the child's side: fd 3, made close-on-exec so that nothing
// the child starts holds it (berthd waits for its close).
func ReadyPipe(prog string) (*os.File, error) {
	if _, err := unix.FcntlInt(3, unix.F_GETFD, 0); err != nil {
		return nil, fmt.Errorf("%s: fd 3 (the ready pipe) is not open: berthd starts it", prog)
	}
	unix.CloseOnExec(3)
	return os.NewFile(3, "ready"), nil
}

// AwaitReady is berthd's side: it reads r (the pipe's read end, whose write
// end the child p alone holds) until the child's message, and kills p if
// ctx ends first. what names the child and logPath its log in errors.
func AwaitReady(ctx context.Context, r *os.File, p *os.Process, what, logPath string) error {
	msg := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		msg <- string(b)
	}()
	select {
	case m := <-msg:
		switch {
		case m == "ok":
			return nil
		case strings.HasPrefix(m, "error: "):
			return errors.New(strings.TrimPrefix(m, "error: "))
		}
		return fmt.Errorf("%s exited before it was ready (see %s)", what, logPath)
	case <-ctx.Done():
		_ = p.Kill()
		return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
	}
}
