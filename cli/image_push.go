package cli

import (
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (a *app) pushCmd() *cobra.Command {
	return &cobra.Command{
		Use: "push NAME[:TAG]", Short: "Upload an image to a registry", Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			resp, err := c.ImagePush(cmd.Context(), args[0], client.ImagePushOptions{RegistryAuth: a.registryAuth(serverOf(args[0]))})
			if err != nil {
				return err
			}
			defer resp.Close()
			return a.showProgress(resp, a.out)
		}),
	}
}
