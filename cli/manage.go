package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// pruneCmd is one of the prune verbs: the kind's API call, its report.
func (a *app) pruneCmd(kind string, run func(cmd *cobra.Command, c *client.Client, all bool) ([]string, uint64, error)) *cobra.Command {
	var force, all bool
	cmd := &cobra.Command{
		Use: "prune [OPTIONS]", Short: "Remove unused " + kind + "s", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				return fmt.Errorf("berth %s prune removes things: confirm with -f (berth asks no questions)", kind)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			deleted, space, err := run(cmd, c, all)
			if err != nil {
				return err
			}
			if len(deleted) > 0 {
				fmt.Fprintf(a.out, "Deleted %ss:\n%s\n\n", strings.ToUpper(kind[:1])+kind[1:], strings.Join(deleted, "\n"))
			}
			if kind != "network" {
				fmt.Fprintf(a.out, "Total reclaimed space: %s\n", size(int64(space)))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	if kind == "image" || kind == "volume" {
		cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused "+kind+"s, not just dangling or anonymous ones")
	}
	return cmd
}

func (a *app) containerPrune() *cobra.Command {
	return a.pruneCmd("container", func(cmd *cobra.Command, c *client.Client, _ bool) ([]string, uint64, error) {
		r, err := c.ContainerPrune(cmd.Context(), client.ContainerPruneOptions{})
		return r.Report.ContainersDeleted, r.Report.SpaceReclaimed, err
	})
}

func (a *app) imagePrune() *cobra.Command {
	return a.pruneCmd("image", func(cmd *cobra.Command, c *client.Client, all bool) ([]string, uint64, error) {
		o := client.ImagePruneOptions{Filters: client.Filters{}}
		if all {
			o.Filters.Add("dangling", "false")
		}
		r, err := c.ImagePrune(cmd.Context(), o)
		var out []string
		for _, d := range r.Report.ImagesDeleted {
			if d.Deleted != "" {
				out = append(out, d.Deleted)
			}
		}
		return out, r.Report.SpaceReclaimed, err
	})
}

func (a *app) volumePrune() *cobra.Command {
	return a.pruneCmd("volume", func(cmd *cobra.Command, c *client.Client, all bool) ([]string, uint64, error) {
		r, err := c.VolumePrune(cmd.Context(), client.VolumePruneOptions{All: all})
		return r.Report.VolumesDeleted, r.Report.SpaceReclaimed, err
	})
}

func (a *app) networkPrune() *cobra.Command {
	return a.pruneCmd("network", func(cmd *cobra.Command, c *client.Client, _ bool) ([]string, uint64, error) {
		r, err := c.NetworkPrune(cmd.Context(), client.NetworkPruneOptions{})
		return r.Report.NetworksDeleted, 0, err
	})
}

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

// statsCmd is docker stats --no-stream: one sample of each container (or
// of the running ones), CPU from the sample's own delta.
func (a *app) statsCmd() *cobra.Command {
	var noStream, all bool
	cmd := &cobra.Command{
		Use: "stats [OPTIONS] [CONTAINER...]", Short: "Display a one-shot sample of containers' resource usage", Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !noStream {
				return fmt.Errorf("only --no-stream is supported: berth stats prints one sample")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			names := args
			if len(names) == 0 {
				res, err := c.ContainerList(cmd.Context(), client.ContainerListOptions{All: all})
				if err != nil {
					return err
				}
				for _, s := range res.Items {
					names = append(names, s.ID)
				}
			}
			tw := tabwriter.NewWriter(a.out, 10, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS")
			for _, n := range names {
				res, err := c.ContainerStats(cmd.Context(), n, client.ContainerStatsOptions{Stream: false})
				if err != nil {
					return err
				}
				var st container.StatsResponse
				err = json.NewDecoder(res.Body).Decode(&st)
				res.Body.Close()
				if err != nil {
					return fmt.Errorf("stats of %s: %w", n, err)
				}
				fmt.Fprintln(tw, statsLine(st))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "disable streaming stats and only pull the first result")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	return cmd
}

func statsLine(st container.StatsResponse) string {
	cpu := 0.0
	cpuDelta := float64(st.CPUStats.CPUUsage.TotalUsage) - float64(st.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(st.CPUStats.SystemUsage) - float64(st.PreCPUStats.SystemUsage)
	if cpuDelta > 0 && sysDelta > 0 {
		cpus := float64(st.CPUStats.OnlineCPUs)
		if cpus == 0 {
			cpus = float64(len(st.CPUStats.CPUUsage.PercpuUsage))
		}
		cpu = cpuDelta / sysDelta * cpus * 100
	}
	mem, limit := float64(st.MemoryStats.Usage), float64(st.MemoryStats.Limit)
	memPct := 0.0
	if limit > 0 {
		memPct = mem / limit * 100
	}
	var rx, tx float64
	for _, n := range st.Networks {
		rx, tx = rx+float64(n.RxBytes), tx+float64(n.TxBytes)
	}
	var rd, wr float64
	for _, e := range st.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			rd += float64(e.Value)
		case "write":
			wr += float64(e.Value)
		}
	}
	return fmt.Sprintf("%s\t%s\t%.2f%%\t%s / %s\t%.2f%%\t%s / %s\t%s / %s\t%d", shortID(st.ID), strings.TrimPrefix(st.Name, "/"), cpu,
		units.BytesSize(mem), units.BytesSize(limit), memPct, units.HumanSizeWithPrecision(rx, 3), units.HumanSizeWithPrecision(tx, 3),
		units.HumanSizeWithPrecision(rd, 3), units.HumanSizeWithPrecision(wr, 3), st.PidsStats.Current)
}

// eventsCmd is docker events: the daemon's events as they come (until
// --until, or the end of the command).
func (a *app) eventsCmd() *cobra.Command {
	var since, until string
	var filters []string
	cmd := &cobra.Command{
		Use: "events [OPTIONS]", Short: "Get real time events from the server", Args: cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			o := client.EventsListOptions{Since: since, Until: until, Filters: client.Filters{}}
			for _, f := range filters {
				k, v, _ := strings.Cut(f, "=")
				o.Filters.Add(k, v)
			}
			res := c.Events(cmd.Context(), o)
			for {
				select {
				case m := <-res.Messages:
					var attrs []string
					for k, v := range m.Actor.Attributes {
						attrs = append(attrs, k+"="+v)
					}
					fmt.Fprintf(a.out, "%s %s %s %s (%s)\n", time.Unix(0, m.TimeNano).Format(time.RFC3339Nano), m.Type, m.Action, m.Actor.ID, strings.Join(attrs, ", "))
				case err := <-res.Err:
					if err == nil || strings.Contains(err.Error(), "EOF") {
						return nil
					}
					return err
				case <-cmd.Context().Done():
					return nil
				}
			}
		}),
	}
	cmd.Flags().StringVar(&since, "since", "", "show all events created since timestamp")
	cmd.Flags().StringVar(&until, "until", "", "stream events until this timestamp")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	return cmd
}

// systemCmd holds docker system df.
func (a *app) systemCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "system COMMAND", Short: "Manage the daemon"}
	df := &cobra.Command{
		Use: "df", Short: "Show disk usage", Args: cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			du, err := c.DiskUsage(cmd.Context(), client.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.out, 10, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
			row := func(kind string, total, active, size_, reclaimable int64) {
				pct := int64(0)
				if size_ > 0 {
					pct = reclaimable * 100 / size_
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s (%d%%)\n", kind, total, active, size(size_), size(reclaimable), pct)
			}
			row("Images", du.Images.TotalCount, du.Images.ActiveCount, du.Images.TotalSize, du.Images.Reclaimable)
			row("Containers", du.Containers.TotalCount, du.Containers.ActiveCount, du.Containers.TotalSize, du.Containers.Reclaimable)
			row("Local Volumes", du.Volumes.TotalCount, du.Volumes.ActiveCount, du.Volumes.TotalSize, du.Volumes.Reclaimable)
			row("Build Cache", du.BuildCache.TotalCount, du.BuildCache.ActiveCount, du.BuildCache.TotalSize, du.BuildCache.Reclaimable)
			return tw.Flush()
		}),
	}
	cmd.AddCommand(df)
	return cmd
}
