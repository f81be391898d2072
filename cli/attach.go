package cli

import (
	"context"
	"io"
	"os"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// attachCmd is docker attach: the container's output (and, unless
// --no-stdin, our input) until it exits or ctrl-p ctrl-q detaches.
func (a *app) attachCmd() *cobra.Command {
	var noStdin bool
	var detachKeys string
	cmd := &cobra.Command{
		Use: "attach [OPTIONS] CONTAINER", Short: "Attach local standard input, output, and error streams to a running container", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.client()
			if err != nil {
				return err
			}
			info, err := c.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			cfg := info.Container.Config
			tty, stdin := cfg != nil && cfg.Tty, cfg != nil && cfg.OpenStdin && !noStdin
			wait := c.ContainerWait(ctx, args[0], client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
			att, err := c.ContainerAttach(ctx, args[0], client.ContainerAttachOptions{Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: detachKeys})
			if err != nil {
				return err
			}
			defer att.Close()
			if tty && stdin {
				if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
					defer term.Restore(int(os.Stdin.Fd()), st)
				}
			}
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if tty {
				followResize(rctx, func(h, w uint) {
					_, _ = c.ContainerResize(ctx, args[0], client.ContainerResizeOptions{Height: h, Width: w})
				})
			}
			watch := &detachWatch{r: a.in}
			if stdin {
				go func() { _, _ = io.Copy(att.Conn, watch) }()
			}
			if tty {
				_, err = io.Copy(a.out, att.Reader)
			} else {
				_, err = stdcopy.StdCopy(a.out, a.err, att.Reader)
			}
			if watch.detached.Load() {
				return nil
			}
			select {
			case r := <-wait.Result:
				if r.StatusCode != 0 {
					return ExitError{Code: int(r.StatusCode)}
				}
			case werr := <-wait.Error:
				return werr
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return cmd
}
