package cli

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// portCmd is `docker port`: where a container's ports are published, the
// host ports the daemon picked included.
func (a *app) portCmd() *cobra.Command {
	return &cobra.Command{
		Use: "port CONTAINER [PRIVATE_PORT[/PROTO]]", Short: "List port mappings or a specific mapping for the container",
		Args: cobra.RangeArgs(1, 2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			res, err := c.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			var ports network.PortMap
			if ns := res.Container.NetworkSettings; ns != nil {
				ports = ns.Ports
			}
			addr := func(b network.PortBinding) string {
				ip := "0.0.0.0"
				if b.HostIP.IsValid() {
					ip = b.HostIP.String()
				}
				return net.JoinHostPort(ip, b.HostPort)
			}
			if len(args) == 2 {
				want := args[1]
				if !strings.Contains(want, "/") {
					want += "/tcp"
				}
				p, err := network.ParsePort(want)
				if err != nil {
					return fmt.Errorf("invalid port %q: %w", args[1], err)
				}
				if len(ports[p]) == 0 {
					return fmt.Errorf("no public port '%s' published for %s", args[1], args[0])
				}
				for _, b := range ports[p] {
					fmt.Fprintln(a.out, addr(b))
				}
				return nil
			}
			var keys []network.Port
			for p := range ports {
				keys = append(keys, p)
			}
			slices.SortFunc(keys, func(x, y network.Port) int { return strings.Compare(x.String(), y.String()) })
			for _, p := range keys {
				for _, b := range ports[p] {
					fmt.Fprintf(a.out, "%s -> %s\n", p, addr(b))
				}
			}
			return nil
		}),
	}
}
