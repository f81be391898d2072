package linux

import (
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
		if m.Limit != nil {
			add(d, "memory.limit_in_bytes", strconv.FormatInt(*m.Limit, 10))
		}
		if m.Swap != nil {
			add(d, "memory.memsw.limit_in_bytes", strconv.FormatInt(*m.Swap, 10))
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
	if b := r.BlockIO; b != nil && b.Weight != nil && *b.Weight != 0 {
		d, err := need("blkio")
		if err != nil {
			return err
		}
		add(d, "blkio.weight", strconv.FormatUint(uint64(*b.Weight), 10))
	}
	for _, f := range w {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

func pidsMax(p *specs.LinuxPids) string {
	if p.Limit <= 0 {
		return "max"
	}
	return strconv.FormatInt(p.Limit, 10)
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
