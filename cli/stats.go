package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

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
