package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/berth-runtime/berth/oci/linux"
)

// updateCmd takes runc's flags: --resources FILE (LinuxResources JSON, "-"
// for stdin), or the common limits one by one.
func updateCmd(g *globals) *cobra.Command {
	var (
		resourcesFile                                   string
		memory, memoryReservation, memorySwap, cpuQuota int64
		cpuShares, cpuPeriod                            uint64
		cpusetCpus, cpusetMems                          string
		pidsLimit                                       int64
		blkioWeight                                     uint16
	)
	cmd := &cobra.Command{
		Use:   "update [flags] CONTAINER_ID",
		Short: "Change a running container's resource limits",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := &specs.LinuxResources{}
			if resourcesFile != "" {
				var b []byte
				var err error
				if resourcesFile == "-" {
					b, err = io.ReadAll(os.Stdin)
				} else {
					b, err = os.ReadFile(resourcesFile)
				}
				if err != nil {
					return fmt.Errorf("--resources: %w", err)
				}
				if err := json.Unmarshal(b, r); err != nil {
					return fmt.Errorf("--resources %s: %w", resourcesFile, err)
				}
			}
			f := cmd.Flags()
			mem := func() *specs.LinuxMemory {
				if r.Memory == nil {
					r.Memory = &specs.LinuxMemory{}
				}
				return r.Memory
			}
			cpu := func() *specs.LinuxCPU {
				if r.CPU == nil {
					r.CPU = &specs.LinuxCPU{}
				}
				return r.CPU
			}
			if f.Changed("memory") {
				mem().Limit = &memory
			}
			if f.Changed("memory-reservation") {
				mem().Reservation = &memoryReservation
			}
			if f.Changed("memory-swap") {
				mem().Swap = &memorySwap
			}
			if f.Changed("cpu-shares") {
				cpu().Shares = &cpuShares
			}
			if f.Changed("cpu-quota") {
				cpu().Quota = &cpuQuota
			}
			if f.Changed("cpu-period") {
				cpu().Period = &cpuPeriod
			}
			if f.Changed("cpuset-cpus") {
				cpu().Cpus = cpusetCpus
			}
			if f.Changed("cpuset-mems") {
				cpu().Mems = cpusetMems
			}
			if f.Changed("pids-limit") {
				r.Pids = &specs.LinuxPids{Limit: &pidsLimit}
			}
			if f.Changed("blkio-weight") {
				r.BlockIO = &specs.LinuxBlockIO{Weight: &blkioWeight}
			}
			return linux.Update(g.root, args[0], r)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&resourcesFile, "resources", "r", "", "LinuxResources JSON file (- for stdin)")
	f.Int64Var(&memory, "memory", 0, "memory limit in bytes")
	f.Int64Var(&memoryReservation, "memory-reservation", 0, "memory soft limit in bytes")
	f.Int64Var(&memorySwap, "memory-swap", 0, "memory+swap limit in bytes (-1: unlimited)")
	f.Uint64Var(&cpuShares, "cpu-shares", 0, "CPU shares (relative weight)")
	f.Int64Var(&cpuQuota, "cpu-quota", 0, "CPU CFS quota in microseconds")
	f.Uint64Var(&cpuPeriod, "cpu-period", 0, "CPU CFS period in microseconds")
	f.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs allowed")
	f.StringVar(&cpusetMems, "cpuset-mems", "", "memory nodes allowed")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "maximum number of processes")
	f.Uint16Var(&blkioWeight, "blkio-weight", 0, "block IO weight (10 to 1000)")
	return cmd
}
