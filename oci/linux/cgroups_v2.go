package linux

import (
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// setV2 writes resources into a cgroup2 directory.
func setV2(dir string, r *specs.LinuxResources) error {
	if err := unsupportedV2(r); err != nil {
		return err
	}
	var w [][2]string
	add := func(file, val string) { w = append(w, [2]string{file, val}) }

	if m := r.Memory; m != nil {
		if m.Reservation != nil {
			add("memory.low", strconv.FormatInt(*m.Reservation, 10))
		}
		if m.Limit != nil {
			add("memory.max", v2Max(*m.Limit))
		}
		if m.Swap != nil {
			// v1 and the OCI spec count memory+swap; v2 counts swap alone.
			sw := *m.Swap
			if sw > 0 && m.Limit != nil && *m.Limit > 0 {
				if sw < *m.Limit {
					return fmt.Errorf("cgroup: memory.swap (%d) is below memory.limit (%d)", sw, *m.Limit)
				}
				sw -= *m.Limit
			}
			add("memory.swap.max", v2Max(sw))
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			add("cpu.weight", strconv.FormatUint(sharesToWeight(*c.Shares), 10))
		}
		if (c.Quota != nil && *c.Quota != 0) || (c.Period != nil && *c.Period != 0) {
			quota := "max"
			if c.Quota != nil && *c.Quota > 0 {
				quota = strconv.FormatInt(*c.Quota, 10)
			}
			period := uint64(100000)
			if c.Period != nil && *c.Period != 0 {
				period = *c.Period
			}
			add("cpu.max", quota+" "+strconv.FormatUint(period, 10))
		}
		if c.Burst != nil {
			add("cpu.max.burst", strconv.FormatUint(*c.Burst, 10))
		}
		if c.Idle != nil {
			add("cpu.idle", strconv.FormatInt(*c.Idle, 10))
		}
		if c.Cpus != "" {
			add("cpuset.cpus", c.Cpus)
		}
		if c.Mems != "" {
			add("cpuset.mems", c.Mems)
		}
	}
	if pl := r.Pids; pl != nil {
		add("pids.max", pidsMax(pl))
	}
	for _, h := range r.HugepageLimits {
		add("hugetlb."+h.Pagesize+".max", strconv.FormatUint(h.Limit, 10))
	}
	if b := r.BlockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 {
			add("io.weight", "default "+strconv.FormatUint(blkioToIOWeight(*b.Weight), 10))
		}
		for _, wd := range b.WeightDevice {
			if wd.Weight != nil {
				add("io.weight", fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, blkioToIOWeight(*wd.Weight)))
			}
		}
		for key, list := range map[string][]specs.LinuxThrottleDevice{
			"rbps": b.ThrottleReadBpsDevice, "wbps": b.ThrottleWriteBpsDevice,
			"riops": b.ThrottleReadIOPSDevice, "wiops": b.ThrottleWriteIOPSDevice,
		} {
			for _, td := range list {
				add("io.max", fmt.Sprintf("%d:%d %s=%d", td.Major, td.Minor, key, td.Rate))
			}
		}
	}
	for k, v := range r.Unified {
		add(k, v)
	}
	for _, kv := range w {
		if err := writeCgroupFile(dir, kv[0], kv[1]); err != nil {
			return err
		}
	}
	if len(r.Devices) > 0 {
		return attachDeviceFilter(dir, r.Devices)
	}
	return nil
}

func v2Max(n int64) string {
	if n < 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}

// sharesToWeight maps cpu.shares [2, 262144] onto cpu.weight [1, 10000],
// the conversion runc and crun use, so one pod gets the same weight on both.
func sharesToWeight(shares uint64) uint64 {
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}

// blkioToIOWeight maps blkio.weight [10, 1000] onto io.weight [1, 10000].
func blkioToIOWeight(w uint16) uint64 {
	return 1 + (uint64(w)-10)*9999/990
}
