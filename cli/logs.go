package cli

import (
	"io"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (a *app) logsCmd() *cobra.Command {
	var o client.ContainerLogsOptions
	cmd := &cobra.Command{
		Use: "logs [OPTIONS] CONTAINER", Short: "Fetch the logs of a container", Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			info, err := c.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			o.ShowStdout, o.ShowStderr = true, true
			rc, err := c.ContainerLogs(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			defer rc.Close()
			if info.Container.Config != nil && info.Container.Config.Tty {
				_, err = io.Copy(a.out, rc)
			} else {
				_, err = stdcopy.StdCopy(a.out, a.err, rc)
			}
			return err
		}),
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Follow, "follow", "f", false, "follow log output")
	fl.BoolVarP(&o.Timestamps, "timestamps", "t", false, "show timestamps")
	fl.StringVar(&o.Since, "since", "", "show logs since a timestamp or relative time")
	fl.StringVar(&o.Until, "until", "", "show logs before a timestamp or relative time")
	fl.StringVarP(&o.Tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	return cmd
}
