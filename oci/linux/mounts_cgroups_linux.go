package linux

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// mountCgroups gives the container a view of its own cgroup: on a cgroup2
// host a cgroup2 mount (rooted at its cgroup namespace) or a bind of its
// directory; on v1 a tmpfs holding a bind of its directory per hierarchy.
func mountCgroups(ic *initConfig, i int, dest string, flags uintptr) error {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	cg := ic.Cgroup
	if cg.Unified != "" {
		if ic.NewCgroupNS {
			if err := unix.Mount("cgroup2", dest, "cgroup2", flags, ""); err != nil {
				return fmt.Errorf("mount cgroup2: %w", err)
			}
			return nil
		}
		return bindMount(ic.bindSource(i, cg.Unified), dest, flags|unix.MS_BIND)
	}
	if err := unix.Mount("tmpfs", dest, "tmpfs", flags&^unix.MS_RDONLY, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs for cgroups: %w", err)
	}
	for _, d := range cgroupV1Dirs(cg.V1) {
		sub := filepath.Join(dest, d.name)
		if err := bindMount(ic.bindSource(i, d.dir), sub, flags|unix.MS_BIND); err != nil {
			return err
		}
		if len(d.ctrls) > 1 {
			for _, c := range d.ctrls {
				if err := os.Symlink(d.name, filepath.Join(dest, c)); err != nil {
					return err
				}
			}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		return remountFlags(dest, unix.MS_RDONLY)
	}
	return nil
}

// cgroupDir is a v1 hierarchy's directory with the controllers mounted
// together there ("cpu,cpuacct"): one bind each in the container.
type cgroupDir struct {
	dir, name string
	ctrls     []string
}

// cgroupV1Dirs groups v1 controllers by directory, in a stable order.
func cgroupV1Dirs(v1 map[string]string) []cgroupDir {
	byDir := map[string][]string{}
	for ctrl, dir := range v1 {
		byDir[dir] = append(byDir[dir], strings.TrimPrefix(ctrl, "name="))
	}
	out := make([]cgroupDir, 0, len(byDir))
	for dir, ctrls := range byDir {
		sort.Strings(ctrls)
		out = append(out, cgroupDir{dir: dir, name: strings.Join(ctrls, ","), ctrls: ctrls})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].dir < out[j].dir })
	return out
}
