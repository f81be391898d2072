package cli

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// eachContainer runs f on each named container, printing each name as
// docker does, and fails at the end if any failed.
func (a *app) eachContainer(ctx context.Context, names []string, f func(context.Context, *client.Client, string) error) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	failed := 0
	for _, n := range names {
		if err := f(ctx, c, n); err != nil {
			fmt.Fprintln(a.err, errorText(err))
			failed++
			continue
		}
		fmt.Fprintln(a.out, n)
	}
	if failed > 0 {
		return ExitError{Code: 1}
	}
	return nil
}

func (a *app) startCmd() *cobra.Command {
	return &cobra.Command{
		Use: "start CONTAINER [CONTAINER...]", Short: "Start one or more stopped containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachContainer(cmd.Context(), args, func(ctx context.Context, c *client.Client, n string) error {
				_, err := c.ContainerStart(ctx, n, client.ContainerStartOptions{})
				return err
			})
		},
	}
}

func (a *app) stopCmd() *cobra.Command {
	var timeout int
	var signal string
	cmd := &cobra.Command{
		Use: "stop [OPTIONS] CONTAINER [CONTAINER...]", Short: "Stop one or more running containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := client.ContainerStopOptions{Signal: signal}
			if cmd.Flags().Changed("time") {
				o.Timeout = &timeout
			}
			return a.eachContainer(cmd.Context(), args, func(ctx context.Context, c *client.Client, n string) error {
				_, err := c.ContainerStop(ctx, n, o)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing the container")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send to the container")
	return cmd
}

func (a *app) restartCmd() *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use: "restart [OPTIONS] CONTAINER [CONTAINER...]", Short: "Restart one or more containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := client.ContainerRestartOptions{}
			if cmd.Flags().Changed("time") {
				o.Timeout = &timeout
			}
			return a.eachContainer(cmd.Context(), args, func(ctx context.Context, c *client.Client, n string) error {
				_, err := c.ContainerRestart(ctx, n, o)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing the container")
	return cmd
}

func (a *app) killCmd() *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use: "kill [OPTIONS] CONTAINER [CONTAINER...]", Short: "Kill one or more running containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachContainer(cmd.Context(), args, func(ctx context.Context, c *client.Client, n string) error {
				_, err := c.ContainerKill(ctx, n, client.ContainerKillOptions{Signal: signal})
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send to the container")
	return cmd
}

func (a *app) rmCmd() *cobra.Command {
	var o client.ContainerRemoveOptions
	cmd := &cobra.Command{
		Use: "rm [OPTIONS] CONTAINER [CONTAINER...]", Aliases: []string{"remove"}, Short: "Remove one or more containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachContainer(cmd.Context(), args, func(ctx context.Context, c *client.Client, n string) error {
				_, err := c.ContainerRemove(ctx, n, o)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&o.Force, "force", "f", false, "force the removal of a running container")
	cmd.Flags().BoolVarP(&o.RemoveVolumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	return cmd
}

func (a *app) renameCmd() *cobra.Command {
	return &cobra.Command{
		Use: "rename CONTAINER NEW_NAME", Short: "Rename a container", Args: cobra.ExactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			_, err := c.ContainerRename(cmd.Context(), args[0], client.ContainerRenameOptions{NewName: args[1]})
			return err
		}),
	}
}

func (a *app) waitCmd() *cobra.Command {
	return &cobra.Command{
		Use: "wait CONTAINER [CONTAINER...]", Short: "Block until one or more containers stop, then print their exit codes", Args: cobra.MinimumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			for _, n := range args {
				w := c.ContainerWait(cmd.Context(), n, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
				select {
				case r := <-w.Result:
					fmt.Fprintln(a.out, r.StatusCode)
				case err := <-w.Error:
					return err
				}
			}
			return nil
		}),
	}
}

func (a *app) pauseCmd(pause bool) *cobra.Command {
	use, short := "pause", "Pause all processes within one or more containers"
	if !pause {
		use, short = "unpause", "Unpause all processes within one or more containers"
	}
	return &cobra.Command{
		Use: use + " CONTAINER [CONTAINER...]", Short: short, Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachContainer(cmd.Context(), args, func(ctx context.Context, c *client.Client, n string) error {
				var err error
				if pause {
					_, err = c.ContainerPause(ctx, n, client.ContainerPauseOptions{})
				} else {
					_, err = c.ContainerUnpause(ctx, n, client.ContainerUnpauseOptions{})
				}
				return err
			})
		},
	}
}
