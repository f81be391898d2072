package oci

import (
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/oci/defaults"
)

func mounts(c *ContainerConfig) []specs.Mount {
	ms := defaults.DefaultMounts()
	taken := map[string]bool{}
	var user []specs.Mount
	for _, m := range c.Mounts {
		dst := filepath.Clean(m.ContainerPath)
		taken[dst] = true
		if m.Tmpfs {
			user = append(user, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: tmpfsOptions(m)})
			continue
		}
		opts := []string{"rbind"}
		switch m.Propagation {
		case "rshared":
			opts = append(opts, "rshared")
		case "rslave":
			opts = append(opts, "rslave")
		default:
			opts = append(opts, "rprivate")
		}
		if m.RecursiveReadonly {
			opts = append(opts, "rro")
		} else if m.Readonly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		user = append(user, specs.Mount{Destination: dst, Type: "bind", Source: m.HostPath, Options: opts})
	}
	if c.ShmPath != "" && !taken["/dev/shm"] {
		ms = slices.DeleteFunc(ms, func(m specs.Mount) bool { return m.Destination == "/dev/shm" })
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: c.ShmPath, Options: []string{"rbind", "rprivate", "rw"}})
	}
	etc := make([]string, 0, len(c.EtcFiles))
	for dst := range c.EtcFiles {
		etc = append(etc, dst)
	}
	slices.Sort(etc)
	for _, dst := range etc {
		if taken[dst] {
			continue // the user's mount wins, as in Kubernetes
		}
		opts := []string{"rbind", "rprivate", "rw"}
		if c.ReadonlyRootfs {
			opts[2] = "ro"
		}
		ms = append(ms, specs.Mount{Destination: dst, Type: "bind", Source: c.EtcFiles[dst], Options: opts})
	}
	// A user's mount over a default one (say /dev/shm) replaces it.
	ms = slices.DeleteFunc(ms, func(m specs.Mount) bool { return taken[m.Destination] })
	// Parents before children, so /a is mounted before /a/b.
	all := append(ms, user...)
	slices.SortStableFunc(all, func(a, b specs.Mount) int {
		return strings.Count(filepath.Clean(a.Destination), "/") - strings.Count(filepath.Clean(b.Destination), "/")
	})
	return all
}

// tmpfsOptions are Docker's: nosuid, nodev and noexec unless the user's
// options say exec (or suid, dev), read-only if asked.
func tmpfsOptions(m Mount) []string {
	opts := []string{"nosuid", "nodev", "noexec"}
	for _, o := range m.TmpfsOptions {
		switch o {
		case "exec", "suid", "dev":
			opts = slices.DeleteFunc(opts, func(d string) bool { return d == "no"+o })
		case "noexec", "nosuid", "nodev":
		default:
			opts = append(opts, o)
		}
	}
	if m.Readonly {
		opts = append(opts, "ro")
	}
	return opts
}
