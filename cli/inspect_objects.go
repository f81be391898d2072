package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// inspectOf is `berth volume inspect` and `berth network inspect`.
func (a *app) inspectOf(kind string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use: "inspect [OPTIONS] " + strings.ToUpper(kind) + " [" + strings.ToUpper(kind) + "...]", Short: "Display detailed information on one or more " + kind + "s",
		Args: cobra.MinimumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			var objs []json.RawMessage
			for _, n := range args {
				raw, err := a.inspectRaw(cmd.Context(), c, n, kind)
				if err != nil {
					return err
				}
				objs = append(objs, raw)
			}
			return a.printInspect(objs, format)
		}),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}

// eachName runs f on each name, printing the names done and the errors.
func (a *app) eachName(names []string, f func(string) error) error {
	failed := false
	for _, n := range names {
		if err := f(n); err != nil {
			fmt.Fprintln(a.err, errorText(err))
			failed = true
			continue
		}
		fmt.Fprintln(a.out, n)
	}
	if failed {
		return ExitError{Code: 1}
	}
	return nil
}

// networkRow is a network as docker network ls's templates name its fields.
type networkRow struct{ ID, Name, Driver, Scope, Internal, Labels string }
