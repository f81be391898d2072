package main

import (
	"github.com/spf13/cobra"

	"github.com/berth-runtime/berth/oci/linux"
)

func killCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] CONTAINER_ID [SIGNAL]",
		Short: "Send a signal (default SIGTERM) to the container's init, or with --all to all its processes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := "SIGTERM"
			if len(args) == 2 {
				sig = args[1]
			}
			s, err := linux.ParseSignal(sig)
			if err != nil {
				return err
			}
			return linux.Kill(g.root, args[0], s, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "signal every process in the container")
	return cmd
}
