package linux

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// setV1 writes resources into the v1 hierarchies. A limit for a controller
// the host does not mount is an error naming it, never silently dropped.
func setV1(dirs map[string]string, r *specs.LinuxResources) error {
	need := func(ctrl string) (string, error) {
		d, ok := dirs[ctrl]
		if !ok {
			return "", fmt.Errorf("cgroup: the %s controller is not mounted on this host", ctrl)
		}
		return d, nil
	}
	var w []func() error
	add := func(dir, file, val string) { w = append(w, func() error { return writeCgroupFile(dir, file, val) }) }

	if m := r.Memory; m != nil {
		d, err := need("memory")
		if err != nil {
			return err
		}
		if m.Reservation != nil {
			add(d, "memory.soft_limit_in_bytes", strconv.FormatInt(*m.Reservation, 10))
		}
		limit, swap := m.Limit, m.Swap
		var cur uint64
		var curErr error = errors.New("no limit asked")
		if limit != nil {
			cur, curErr = readUint(d + "/memory.limit_in_bytes")
		}
		if limit != nil && swap == nil && curErr == nil && unlimitedV1(cur) != 0 {
			// A limited cgroup allowed no swap (memsw = memory) keeps none:
			// raised alone, the limit would pass memsw and the kernel refuse it.
			if sw, err := readUint(d + "/memory.memsw.limit_in_bytes"); err == nil && sw == cur {
				swap = limit
			}
		}
		// The kernel keeps memory ≤ memsw at every write: raising both, memsw
		// goes first; lowering, memory does.
		swapFirst := limit != nil && swap != nil && (*swap == -1 || (curErr == nil && int64(cur) < *swap))
		if swap != nil && swapFirst {
			add(d, "memory.memsw.limit_in_bytes", strconv.FormatInt(*swap, 10))
		}
		if limit != nil {
			add(d, "memory.limit_in_bytes", strconv.FormatInt(*limit, 10))
		}
		if swap != nil && !swapFirst {
			add(d, "memory.memsw.limit_in_bytes", strconv.FormatInt(*swap, 10))
		}
		if m.Swappiness != nil && *m.Swappiness <= 100 {
			add(d, "memory.swappiness", strconv.FormatUint(*m.Swappiness, 10))
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			add(d, "memory.oom_control", "1")
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil || c.Quota != nil || c.Period != nil {
			d, err := need("cpu")
			if err != nil {
				return err
			}
			if c.Shares != nil && *c.Shares != 0 {
				add(d, "cpu.shares", strconv.FormatUint(*c.Shares, 10))
			}
			// The period first: the kernel checks quota against the current period.
			if c.Period != nil && *c.Period != 0 {
				add(d, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10))
			}
			if c.Quota != nil && *c.Quota != 0 {
				add(d, "cpu.cfs_quota_us", strconv.FormatInt(*c.Quota, 10))
			}
		}
		if c.Burst != nil || c.RealtimePeriod != nil || c.RealtimeRuntime != nil || c.Idle != nil {
			d, err := need("cpu")
			if err != nil {
				return err
			}
			if c.Burst != nil {
				add(d, "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10))
			}
			if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
				add(d, "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10))
			}
			if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
				add(d, "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10))
			}
			if c.Idle != nil {
				add(d, "cpu.idle", strconv.FormatInt(*c.Idle, 10))
			}
		}
		if c.Cpus != "" || c.Mems != "" {
			d, err := need("cpuset")
			if err != nil {
				return err
			}
			if c.Cpus != "" {
				add(d, "cpuset.cpus", c.Cpus)
			}
			if c.Mems != "" {
				add(d, "cpuset.mems", c.Mems)
			}
		}
	}
	if pl := r.Pids; pl != nil {
		d, err := need("pids")
		if err != nil {
			return err
		}
		add(d, "pids.max", pidsMax(pl))
	}
	for _, h := range r.HugepageLimits {
		d, err := need("hugetlb")
		if err != nil {
			return err
		}
		add(d, "hugetlb."+h.Pagesize+".limit_in_bytes", strconv.FormatUint(h.Limit, 10))
	}
	if len(r.Devices) > 0 {
		d, err := need("devices")
		if err != nil {
			return err
		}
		for _, dev := range append(r.Devices, implicitDevices...) {
			file := "devices.deny"
			if dev.Allow {
				file = "devices.allow"
			}
			add(d, file, deviceRule(dev))
		}
	}
	if b := r.BlockIO; b != nil && blockIOSet(b) {
		d, err := need("blkio")
		if err != nil {
			return err
		}
		if b.Weight != nil && *b.Weight != 0 {
			add(d, "blkio.weight", strconv.FormatUint(uint64(*b.Weight), 10))
		}
		if b.LeafWeight != nil && *b.LeafWeight != 0 {
			add(d, "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10))
		}
		for _, wd := range b.WeightDevice {
			if wd.Weight != nil {
				add(d, "blkio.weight_device", fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight))
			}
		}
		for file, list := range map[string][]specs.LinuxThrottleDevice{
			"blkio.throttle.read_bps_device": b.ThrottleReadBpsDevice, "blkio.throttle.write_bps_device": b.ThrottleWriteBpsDevice,
			"blkio.throttle.read_iops_device": b.ThrottleReadIOPSDevice, "blkio.throttle.write_iops_device": b.ThrottleWriteIOPSDevice,
		} {
			for _, td := range list {
				add(d, file, fmt.Sprintf("%d:%d %d", td.Major, td.Minor, td.Rate))
			}
		}
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			d, err := need("net_cls")
			if err != nil {
				return err
			}
			add(d, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10))
		}
		for _, p := range n.Priorities {
			d, err := need("net_prio")
			if err != nil {
				return err
			}
			add(d, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority))
		}
	}
	if len(r.Unified) > 0 {
		return fmt.Errorf("linux.resources.unified: needs cgroup v2; this host drives cgroups as v1")
	}
	for _, f := range w {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

func blockIOSet(b *specs.LinuxBlockIO) bool {
	return (b.Weight != nil && *b.Weight != 0) || (b.LeafWeight != nil && *b.LeafWeight != 0) || len(b.WeightDevice) > 0 ||
		len(b.ThrottleReadBpsDevice)+len(b.ThrottleWriteBpsDevice)+len(b.ThrottleReadIOPSDevice)+len(b.ThrottleWriteIOPSDevice) > 0
}

// unsupportedResources names the resources no cgroup version here applies,
// so that a spec that asks for them fails instead of running without them.
func unsupportedResources(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if m := r.Memory; m != nil {
		switch {
		case m.Kernel != nil:
			return errors.New("linux.resources.memory.kernel: kernel memory limits are deprecated and not supported")
		case m.KernelTCP != nil:
			return errors.New("linux.resources.memory.kernelTCP: not supported")
		case m.UseHierarchy != nil && !*m.UseHierarchy:
			return errors.New("linux.resources.memory.useHierarchy: false is not supported (the kernel always uses the hierarchy)")
		case m.Swappiness != nil && *m.Swappiness > 100:
			return fmt.Errorf("linux.resources.memory.swappiness %d: want 0 to 100", *m.Swappiness)
		}
	}
	if len(r.Rdma) > 0 {
		return errors.New("linux.resources.rdma: not supported")
	}
	return nil
}

// unsupportedV2 names the v1-only resources a v2 host cannot apply.
func unsupportedV2(r *specs.LinuxResources) error {
	switch {
	case r.Memory != nil && r.Memory.Swappiness != nil:
		return errors.New("linux.resources.memory.swappiness: cgroup v2 has no per-cgroup swappiness")
	case r.Memory != nil && r.Memory.DisableOOMKiller != nil && *r.Memory.DisableOOMKiller:
		return errors.New("linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer")
	case r.CPU != nil && ((r.CPU.RealtimeRuntime != nil && *r.CPU.RealtimeRuntime != 0) || (r.CPU.RealtimePeriod != nil && *r.CPU.RealtimePeriod != 0)):
		return errors.New("linux.resources.cpu.realtime*: cgroup v2 has no realtime CPU budget")
	case r.Network != nil && (r.Network.ClassID != nil || len(r.Network.Priorities) > 0):
		return errors.New("linux.resources.network: net_cls and net_prio are cgroup v1 controllers")
	case r.BlockIO != nil && r.BlockIO.LeafWeight != nil && *r.BlockIO.LeafWeight != 0:
		return errors.New("linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight")
	}
	return nil
}

func pidsMax(p *specs.LinuxPids) string {
	if p.Limit == nil || *p.Limit <= 0 {
		return "max"
	}
	return strconv.FormatInt(*p.Limit, 10)
}

// deviceRule formats a rule as v1's devices.allow expects: "c 1:3 rwm".
func deviceRule(d specs.LinuxDeviceCgroup) string {
	typ := d.Type
	if typ == "" {
		typ = "a"
	}
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return strconv.FormatInt(*p, 10)
	}
	access := d.Access
	if access == "" {
		access = "rwm"
	}
	if typ == "a" {
		return "a *:* " + access
	}
	return strings.Join([]string{typ, num(d.Major) + ":" + num(d.Minor), access}, " ")
}

func dev(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	d := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
	if major >= 0 {
		d.Major = &major
	}
	if minor >= 0 {
		d.Minor = &minor
	}
	return d
}

// implicitDevices follow the spec's rules as they do in runc and crun, so
// that a spec denying all devices still leaves a container its /dev/null,
// ttys and ptys.
var implicitDevices = []specs.LinuxDeviceCgroup{
	dev("c", -1, -1, "m"), dev("b", -1, -1, "m"),
	dev("c", 1, 3, "rwm"), dev("c", 1, 5, "rwm"), dev("c", 1, 7, "rwm"), dev("c", 1, 8, "rwm"),
	dev("c", 1, 9, "rwm"), dev("c", 5, 0, "rwm"), dev("c", 5, 1, "rwm"), dev("c", 5, 2, "rwm"),
	dev("c", 136, -1, "rwm"), dev("c", 10, 200, "rwm"),
}
