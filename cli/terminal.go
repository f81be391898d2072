package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
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

// updateCmd is docker update: limits and the restart policy.
func (a *app) updateCmd() *cobra.Command {
	var memory, cpus, restart string
	var pids int64
	var shares int64
	cmd := &cobra.Command{
		Use: "update [OPTIONS] CONTAINER [CONTAINER...]", Short: "Update configuration of one or more containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := &container.Resources{CPUShares: shares}
			if memory != "" {
				n, err := units.RAMInBytes(memory)
				if err != nil {
					return fmt.Errorf("invalid argument %q for \"-m, --memory\" flag: %w", memory, err)
				}
				r.Memory = n
			}
			if cpus != "" {
				f, err := strconv.ParseFloat(cpus, 64)
				if err != nil {
					return fmt.Errorf("invalid argument %q for \"--cpus\" flag", cpus)
				}
				r.NanoCPUs = int64(f * 1e9)
			}
			if cmd.Flags().Changed("pids-limit") {
				r.PidsLimit = &pids
			}
			o := client.ContainerUpdateOptions{Resources: r}
			if restart != "" {
				p, err := restartPolicy(restart)
				if err != nil {
					return err
				}
				o.RestartPolicy = &p
			}
			return a.eachContainer(cmd.Context(), args, func(ctx context.Context, c *client.Client, n string) error {
				_, err := c.ContainerUpdate(ctx, n, o)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&memory, "memory", "m", "", "memory limit")
	cmd.Flags().StringVar(&cpus, "cpus", "", "number of CPUs")
	cmd.Flags().Int64Var(&pids, "pids-limit", 0, "tune container pids limit (-1 for unlimited)")
	cmd.Flags().Int64VarP(&shares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	cmd.Flags().StringVar(&restart, "restart", "", "restart policy to apply when a container exits")
	return cmd
}

// networkConnectCmds are docker network connect and disconnect.
func (a *app) networkConnectCmds() []*cobra.Command {
	var aliases []string
	connect := &cobra.Command{
		Use: "connect [OPTIONS] NETWORK CONTAINER", Short: "Connect a container to a network", Args: cobra.ExactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			_, err := c.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: &network.EndpointSettings{Aliases: aliases}})
			return err
		}),
	}
	connect.Flags().StringArrayVar(&aliases, "alias", nil, "add network-scoped alias for the container")
	var force bool
	disconnect := &cobra.Command{
		Use: "disconnect [OPTIONS] NETWORK CONTAINER", Short: "Disconnect a container from a network", Args: cobra.ExactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			_, err := c.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		}),
	}
	disconnect.Flags().BoolVarP(&force, "force", "f", false, "force the container to disconnect from a network")
	return []*cobra.Command{connect, disconnect}
}
