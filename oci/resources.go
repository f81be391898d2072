package oci

import (
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// LinuxResources converts Berth's resources to the spec's, for a live update.
func LinuxResources(in Resources) *specs.LinuxResources {
	r := &specs.LinuxResources{}
	setResources(r, in)
	return r
}

func setResources(r *specs.LinuxResources, in Resources) {
	if in.MemoryLimit > 0 || in.MemorySwapLimit > 0 {
		r.Memory = &specs.LinuxMemory{}
		if in.MemoryLimit > 0 {
			r.Memory.Limit = &in.MemoryLimit
		}
		if in.MemorySwapLimit > 0 {
			r.Memory.Swap = &in.MemorySwapLimit
		}
	}
	if in.CPUShares > 0 || in.CPUQuota > 0 || in.CPUPeriod > 0 || in.CpusetCpus != "" || in.CpusetMems != "" {
		r.CPU = &specs.LinuxCPU{Cpus: in.CpusetCpus, Mems: in.CpusetMems}
		if in.CPUShares > 0 {
			v := uint64(in.CPUShares)
			r.CPU.Shares = &v
		}
		if in.CPUQuota > 0 {
			r.CPU.Quota = &in.CPUQuota
		}
		if in.CPUPeriod > 0 {
			v := uint64(in.CPUPeriod)
			r.CPU.Period = &v
		}
	}
	if in.PidsLimit > 0 {
		limit := in.PidsLimit
		r.Pids = &specs.LinuxPids{Limit: &limit}
	}
	for size, limit := range in.HugepageLimits {
		r.HugepageLimits = append(r.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: size, Limit: limit})
	}
	slices.SortFunc(r.HugepageLimits, func(a, b specs.LinuxHugepageLimit) int { return strings.Compare(a.Pagesize, b.Pagesize) })
	r.Unified = in.Unified
}
