package cli

import (
	"context"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// followResize sends the terminal's size now and on every SIGWINCH until
// ctx ends, through resize (a container's or an exec's).
func followResize(ctx context.Context, resize func(h, w uint)) {
	send := func() {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			resize(uint(h), uint(w))
		}
	}
	send()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	go func() {
		defer signal.Stop(winch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-winch:
				send()
			}
		}
	}()
}
