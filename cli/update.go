package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

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
