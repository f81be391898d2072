package main

import (
	"github.com/spf13/cobra"

	"github.com/berth-runtime/berth/oci/linux"
)

func startCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start CONTAINER_ID",
		Short: "Start a created container's process",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return linux.Start(cmd.Context(), g.root, args[0])
		},
	}
}
