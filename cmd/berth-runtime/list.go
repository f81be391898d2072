package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-runtime/berth/oci/linux"
)

func listCmd(g *globals) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "list [flags]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := linux.List(g.root)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, s := range all {
					fmt.Fprintln(out, s.ID)
				}
				return nil
			}
			switch format {
			case "json":
				list := make([]runcState, 0, len(all))
				for _, s := range all {
					list = append(list, stateJSON(g.root, s))
				}
				return printJSON(out, list)
			case "table":
				tw := tabwriter.NewWriter(out, 12, 1, 3, ' ', 0)
				fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
				for _, s := range all {
					st := stateJSON(g.root, s)
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", st.ID, st.Pid, st.Status, st.Bundle,
						st.Created.Format(time.RFC3339Nano), "root")
				}
				return tw.Flush()
			}
			return fmt.Errorf("--format %q: want table or json", format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only IDs")
	return cmd
}
