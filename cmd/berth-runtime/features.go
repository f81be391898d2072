package main

import (
	"github.com/spf13/cobra"

	"github.com/berth-runtime/berth/oci/linux"
)

func featuresCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "Print what this runtime implements, as the OCI features JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printJSON(cmd.OutOrStdout(), linux.Features())
		},
	}
}
