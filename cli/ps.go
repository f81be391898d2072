package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// psRow is a container as docker ps's templates name its fields.
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, State, Status, Names, Networks string
	Labels                                                                           string
	summary                                                                          container.Summary
}

// Label is docker ps's {{.Label "key"}}.
func (r psRow) Label(k string) string { return r.summary.Labels[k] }

func (a *app) psCmd() *cobra.Command {
	var all, quiet, noTrunc, latest, allNamespaces bool
	var last int
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use: "ps [OPTIONS]", Short: "List containers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if allNamespaces {
				if err := a.listCRIContainers(cmd.Context()); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			o := client.ContainerListOptions{All: all || last > 0 || latest, Filters: client.Filters{}}
			if latest {
				last = 1
			}
			o.Limit = last
			for _, f := range filters {
				k, v, _ := strings.Cut(f, "=")
				o.Filters.Add(k, v)
			}
			res, err := c.ContainerList(cmd.Context(), o)
			if err != nil {
				return err
			}
			if quiet {
				for _, s := range res.Items {
					fmt.Fprintln(a.out, maybeTrunc(s.ID, noTrunc))
				}
				return nil
			}
			p, err := newPrinter(a.out, format, "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
				map[string]string{"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "RunningFor": "CREATED", "Status": "STATUS",
					"Ports": "PORTS", "Names": "NAMES", "State": "STATE", "CreatedAt": "CREATED AT", "Networks": "NETWORKS", "Labels": "LABELS"})
			if err != nil {
				return err
			}
			for _, s := range res.Items {
				if err := p.row(summaryRow(s, noTrunc)); err != nil {
					return err
				}
			}
			return p.flush()
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	fl.BoolVarP(&latest, "latest", "l", false, "show the latest created container")
	fl.IntVarP(&last, "last", "n", 0, "show n last created containers")
	fl.StringVar(&format, "format", "", "format output using a Go template, or json")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	fl.BoolVarP(&allNamespaces, "all-namespaces", "A", false, "list Kubernetes containers too, read from the CRI (read-only)")
	return cmd
}

func maybeTrunc(id string, noTrunc bool) string {
	if noTrunc {
		return id
	}
	return shortID(id)
}

func summaryRow(s container.Summary, noTrunc bool) psRow {
	names := make([]string, len(s.Names))
	for i, n := range s.Names {
		names[i] = strings.TrimPrefix(n, "/")
	}
	cmd := s.Command
	if !noTrunc && len(cmd) > 20 {
		cmd = cmd[:19] + "…"
	}
	var ports []string
	for _, p := range s.Ports {
		if p.PublicPort != 0 {
			ports = append(ports, fmt.Sprintf("%s:%d->%d/%s", p.IP, p.PublicPort, p.PrivatePort, p.Type))
		} else {
			ports = append(ports, fmt.Sprintf("%d/%s", p.PrivatePort, p.Type))
		}
	}
	var labels []string
	for k, v := range s.Labels {
		labels = append(labels, k+"="+v)
	}
	created := time.Unix(s.Created, 0)
	return psRow{ID: maybeTrunc(s.ID, noTrunc), Image: s.Image, Command: strconv.Quote(cmd), CreatedAt: created.Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: ago(created), Ports: strings.Join(ports, ", "), State: string(s.State), Status: s.Status, Names: strings.Join(names, ","),
		Networks: string(s.HostConfig.NetworkMode), Labels: strings.Join(labels, ","), summary: s}
}
