package cli

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (a *app) networkCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "network COMMAND", Short: "Manage networks"}
	var format string
	var quiet, noTrunc bool
	ls := &cobra.Command{
		Use: "ls [OPTIONS]", Aliases: []string{"list"}, Short: "List networks", Args: cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			res, err := c.NetworkList(cmd.Context(), client.NetworkListOptions{})
			if err != nil {
				return err
			}
			// Sorted by name, as docker lists them.
			slices.SortFunc(res.Items, func(x, y network.Summary) int { return strings.Compare(x.Name, y.Name) })
			if quiet {
				for _, n := range res.Items {
					fmt.Fprintln(a.out, maybeTrunc(n.ID, noTrunc))
				}
				return nil
			}
			p, err := newPrinter(a.out, format, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
				map[string]string{"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Internal": "INTERNAL", "Labels": "LABELS"})
			if err != nil {
				return err
			}
			for _, n := range res.Items {
				var labels []string
				for k, v := range n.Labels {
					labels = append(labels, k+"="+v)
				}
				if err := p.row(networkRow{ID: maybeTrunc(n.ID, noTrunc), Name: n.Name, Driver: n.Driver, Scope: n.Scope,
					Internal: fmt.Sprint(n.Internal), Labels: strings.Join(labels, ",")}); err != nil {
					return err
				}
			}
			return p.flush()
		}),
	}
	ls.Flags().StringVar(&format, "format", "", "format output using a Go template, or json")
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	ls.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate the output")
	var internal bool
	var subnet string
	create := &cobra.Command{
		Use: "create [OPTIONS] NETWORK", Short: "Create a network", Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			o := client.NetworkCreateOptions{Driver: "bridge", Internal: internal}
			if subnet != "" {
				o.IPAM = ipamFor(subnet)
				if o.IPAM == nil {
					return fmt.Errorf("invalid subnet %q", subnet)
				}
			}
			res, err := c.NetworkCreate(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out, res.ID)
			return nil
		}),
	}
	create.Flags().BoolVar(&internal, "internal", false, "restrict external access to the network")
	create.Flags().StringVar(&subnet, "subnet", "", "subnet in CIDR format")
	rm := &cobra.Command{
		Use: "rm NETWORK [NETWORK...]", Aliases: []string{"remove"}, Short: "Remove one or more networks", Args: cobra.MinimumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			return a.eachName(args, func(n string) error {
				_, err := c.NetworkRemove(cmd.Context(), n, client.NetworkRemoveOptions{})
				return err
			})
		}),
	}
	cmd.AddCommand(ls, create, rm, a.networkPrune(), a.inspectOf("network"))
	cmd.AddCommand(a.networkConnectCmds()...)
	return cmd
}

// ipamFor is a network's address plan on subnet (nil if it is no CIDR).
func ipamFor(subnet string) *network.IPAM {
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return nil
	}
	return &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: p}}}
}

// networkConnectCmds are docker network connect and disconnect.
func (a *app) networkConnectCmds() []*cobra.Command {
	var aliases []string
	connect := &cobra.Command{
		Use: "connect [OPTIONS] NETWORK CONTAINER", Short: "Connect a container to a network", Args: cobra.ExactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			_, err := c.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: &network.EndpointSettings{Aliases: aliases}})
			return err
		}),
	}
	connect.Flags().StringArrayVar(&aliases, "alias", nil, "add network-scoped alias for the container")
	var force bool
	disconnect := &cobra.Command{
		Use: "disconnect [OPTIONS] NETWORK CONTAINER", Short: "Disconnect a container from a network", Args: cobra.ExactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			_, err := c.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		}),
	}
	disconnect.Flags().BoolVarP(&force, "force", "f", false, "force the container to disconnect from a network")
	return []*cobra.Command{connect, disconnect}
}
