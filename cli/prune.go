package cli

import (
	"fmt"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// pruneCmd is one of the prune verbs: the kind's API call, its report.
func (a *app) pruneCmd(kind string, run func(cmd *cobra.Command, c *client.Client, all bool) ([]string, uint64, error)) *cobra.Command {
	var force, all bool
	cmd := &cobra.Command{
		Use: "prune [OPTIONS]", Short: "Remove unused " + kind + "s", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				return fmt.Errorf("berth %s prune removes things: confirm with -f (berth asks no questions)", kind)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			deleted, space, err := run(cmd, c, all)
			if err != nil {
				return err
			}
			if len(deleted) > 0 {
				fmt.Fprintf(a.out, "Deleted %ss:\n%s\n\n", strings.ToUpper(kind[:1])+kind[1:], strings.Join(deleted, "\n"))
			}
			if kind != "network" {
				fmt.Fprintf(a.out, "Total reclaimed space: %s\n", size(int64(space)))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	if kind == "image" || kind == "volume" {
		cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused "+kind+"s, not just dangling or anonymous ones")
	}
	return cmd
}

func (a *app) containerPrune() *cobra.Command {
	return a.pruneCmd("container", func(cmd *cobra.Command, c *client.Client, _ bool) ([]string, uint64, error) {
		r, err := c.ContainerPrune(cmd.Context(), client.ContainerPruneOptions{})
		return r.Report.ContainersDeleted, r.Report.SpaceReclaimed, err
	})
}

func (a *app) imagePrune() *cobra.Command {
	return a.pruneCmd("image", func(cmd *cobra.Command, c *client.Client, all bool) ([]string, uint64, error) {
		o := client.ImagePruneOptions{Filters: client.Filters{}}
		if all {
			o.Filters.Add("dangling", "false")
		}
		r, err := c.ImagePrune(cmd.Context(), o)
		var out []string
		for _, d := range r.Report.ImagesDeleted {
			if d.Deleted != "" {
				out = append(out, d.Deleted)
			}
		}
		return out, r.Report.SpaceReclaimed, err
	})
}

func (a *app) volumePrune() *cobra.Command {
	return a.pruneCmd("volume", func(cmd *cobra.Command, c *client.Client, all bool) ([]string, uint64, error) {
		r, err := c.VolumePrune(cmd.Context(), client.VolumePruneOptions{All: all})
		return r.Report.VolumesDeleted, r.Report.SpaceReclaimed, err
	})
}

func (a *app) networkPrune() *cobra.Command {
	return a.pruneCmd("network", func(cmd *cobra.Command, c *client.Client, _ bool) ([]string, uint64, error) {
		r, err := c.NetworkPrune(cmd.Context(), client.NetworkPruneOptions{})
		return r.Report.NetworksDeleted, 0, err
	})
}
