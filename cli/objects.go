package cli

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (a *app) volumeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "volume COMMAND", Short: "Manage volumes"}
	var format string
	var quiet bool
	ls := &cobra.Command{
		Use: "ls [OPTIONS]", Aliases: []string{"list"}, Short: "List volumes", Args: cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			res, err := c.VolumeList(cmd.Context(), client.VolumeListOptions{})
			if err != nil {
				return err
			}
			if quiet {
				for _, v := range res.Items {
					fmt.Fprintln(a.out, v.Name)
				}
				return nil
			}
			p, err := newPrinter(a.out, format, "table {{.Driver}}\t{{.Name}}", map[string]string{"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT"})
			if err != nil {
				return err
			}
			for _, v := range res.Items {
				if err := p.row(v); err != nil {
					return err
				}
			}
			return p.flush()
		}),
	}
	ls.Flags().StringVar(&format, "format", "", "format output using a Go template, or json")
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	create := &cobra.Command{
		Use: "create [OPTIONS] [VOLUME]", Short: "Create a volume", Args: cobra.MaximumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			o := client.VolumeCreateOptions{Driver: "local"}
			if len(args) == 1 {
				o.Name = args[0]
			}
			res, err := c.VolumeCreate(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out, res.Volume.Name)
			return nil
		}),
	}
	var force bool
	rm := &cobra.Command{
		Use: "rm [OPTIONS] VOLUME [VOLUME...]", Aliases: []string{"remove"}, Short: "Remove one or more volumes", Args: cobra.MinimumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			return a.eachName(args, func(n string) error {
				_, err := c.VolumeRemove(cmd.Context(), n, client.VolumeRemoveOptions{Force: force})
				return err
			})
		}),
	}
	rm.Flags().BoolVarP(&force, "force", "f", false, "force the removal of one or more volumes")
	cmd.AddCommand(ls, create, rm, a.volumePrune(), a.inspectOf("volume"))
	return cmd
}

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
