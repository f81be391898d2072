package cli

import (
	"fmt"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (a *app) volumeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "volume COMMAND", Short: "Manage volumes"}
	var format string
	var quiet bool
	ls := &cobra.Command{
		Use: "ls [OPTIONS]", Aliases: []string{"list"}, Short: "List volumes", Args: cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			res, err := c.VolumeList(cmd.Context(), client.VolumeListOptions{})
			if err != nil {
				return err
			}
			if quiet {
				for _, v := range res.Items {
					fmt.Fprintln(a.out, v.Name)
				}
				return nil
			}
			p, err := newPrinter(a.out, format, "table {{.Driver}}\t{{.Name}}", map[string]string{"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT"})
			if err != nil {
				return err
			}
			for _, v := range res.Items {
				if err := p.row(v); err != nil {
					return err
				}
			}
			return p.flush()
		}),
	}
	ls.Flags().StringVar(&format, "format", "", "format output using a Go template, or json")
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	create := &cobra.Command{
		Use: "create [OPTIONS] [VOLUME]", Short: "Create a volume", Args: cobra.MaximumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			o := client.VolumeCreateOptions{Driver: "local"}
			if len(args) == 1 {
				o.Name = args[0]
			}
			res, err := c.VolumeCreate(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out, res.Volume.Name)
			return nil
		}),
	}
	var force bool
	rm := &cobra.Command{
		Use: "rm [OPTIONS] VOLUME [VOLUME...]", Aliases: []string{"remove"}, Short: "Remove one or more volumes", Args: cobra.MinimumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			return a.eachName(args, func(n string) error {
				_, err := c.VolumeRemove(cmd.Context(), n, client.VolumeRemoveOptions{Force: force})
				return err
			})
		}),
	}
	rm.Flags().BoolVarP(&force, "force", "f", false, "force the removal of one or more volumes")
	cmd.AddCommand(ls, create, rm, a.volumePrune(), a.inspectOf("volume"))
	return cmd
}
