package cli

import (
	"context"
	"io"
	"os"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (a *app) execCmd() *cobra.Command {
	var o client.ExecCreateOptions
	var detach, interactive bool
	cmd := &cobra.Command{
		Use: "exec [OPTIONS] CONTAINER COMMAND [ARG...]", Short: "Execute a command in a running container", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.client()
			if err != nil {
				return err
			}
			o.Cmd, o.AttachStdin, o.AttachStdout, o.AttachStderr = args[1:], interactive, !detach, !detach
			if o.TTY {
				if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
					o.ConsoleSize = client.ConsoleSize{Height: uint(h), Width: uint(w)}
				}
			}
			ex, err := c.ExecCreate(ctx, args[0], o)
			if err != nil {
				return withCode(err, 126)
			}
			if detach {
				_, err := c.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true})
				return err
			}
			att, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: o.TTY, ConsoleSize: o.ConsoleSize})
			if err != nil {
				return withCode(err, 126)
			}
			defer att.Close()
			if o.TTY && interactive {
				if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
					defer term.Restore(int(os.Stdin.Fd()), st)
				}
			}
			if interactive {
				go func() {
					_, _ = io.Copy(att.Conn, a.in)
					_ = att.CloseWrite()
				}()
			}
			if o.TTY {
				rctx, stopResize := context.WithCancel(ctx)
				defer stopResize()
				followResize(rctx, func(h, w uint) { _, _ = c.ExecResize(ctx, ex.ID, client.ExecResizeOptions{Height: h, Width: w}) })
				_, err = io.Copy(a.out, att.Reader)
			} else {
				_, err = stdcopy.StdCopy(a.out, a.err, att.Reader)
			}
			if err != nil {
				return err
			}
			res, err := c.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
			if err != nil {
				return err
			}
			if res.ExitCode != 0 {
				return ExitError{Code: res.ExitCode}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&detach, "detach", "d", false, "detached mode: run command in the background")
	fl.BoolVarP(&interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fl.BoolVarP(&o.TTY, "tty", "t", false, "allocate a pseudo-TTY")
	fl.StringArrayVarP(&o.Env, "env", "e", nil, "set environment variables")
	fl.StringVarP(&o.User, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVarP(&o.WorkingDir, "workdir", "w", "", "working directory inside the container")
	return cmd
}
