package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-runtime/berth/oci/linux"
)

func psCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] CONTAINER_ID",
		Short: "List the processes running in a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pids, err := linux.Pids(g.root, args[0])
			if err != nil {
				return err
			}
			if format == "json" {
				return printJSON(cmd.OutOrStdout(), pids)
			}
			strs := make([]string, len(pids))
			for i, p := range pids {
				strs[i] = fmt.Sprint(p)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "PID\n"+strings.Join(strs, "\n"))
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}
