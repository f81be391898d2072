package cli

import (
	"github.com/spf13/cobra"
)

// containerCmd and imageCmd are docker's management groups, for the verbs
// that exist only there.
func (a *app) containerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "container COMMAND", Short: "Manage containers"}
	cmd.AddCommand(a.containerPrune())
	return cmd
}

func (a *app) imageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "image COMMAND", Short: "Manage images"}
	cmd.AddCommand(a.imagePrune())
	return cmd
}
