package oci

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-runtime/berth/oci/defaults"
)

// BuildSpec makes the runtime spec for a container of image img whose root
// filesystem is mounted at rootfs (read for /etc/passwd and /etc/group).
func BuildSpec(img ocispec.ImageConfig, c *ContainerConfig, rootfs string) (*specs.Spec, error) {
	s := defaults.DefaultSpec()
	s.Root = &specs.Root{Path: rootfs, Readonly: c.ReadonlyRootfs}
	s.Hostname = c.Hostname
	s.Annotations = c.Annotations
	p := s.Process
	p.NoNewPrivileges = c.NoNewPrivileges
	p.Terminal = c.Tty
	if cs := c.ConsoleSize; c.Tty && cs != nil && cs[0] > 0 && cs[1] > 0 {
		p.ConsoleSize = &specs.Box{Height: cs[0], Width: cs[1]}
	}

	p.Args = processArgs(img, c)
	if len(p.Args) == 0 {
		return nil, fmt.Errorf("no command: the image has no entrypoint or cmd and none was given")
	}
	p.Env = mergeEnv(img.Env, c.Env)
	p.Cwd = "/"
	if img.WorkingDir != "" {
		p.Cwd = img.WorkingDir
	}
	if c.WorkingDir != "" {
		p.Cwd = c.WorkingDir
	}
	if !filepath.IsAbs(p.Cwd) {
		return nil, fmt.Errorf("working dir %q must be absolute", p.Cwd)
	}
	user, err := resolveUser(rootfs, img.User, c)
	if err != nil {
		return nil, err
	}
	p.User = user
	if err := setCapabilities(p, c); err != nil {
		return nil, err
	}
	p.OOMScoreAdj = c.OOMScoreAdj
	for _, rl := range c.Rlimits {
		p.Rlimits = slices.DeleteFunc(p.Rlimits, func(d specs.POSIXRlimit) bool { return d.Type == rl.Type })
		p.Rlimits = append(p.Rlimits, rl)
	}

	l := s.Linux
	l.CgroupsPath = c.CgroupsPath
	l.Sysctl = c.Sysctls
	l.Namespaces = namespaces(c.Namespaces)
	if c.Namespaces.User != "" {
		l.UIDMappings, l.GIDMappings = c.Namespaces.UIDMappings, c.Namespaces.GIDMappings
	}
	if c.MaskedPaths != nil {
		l.MaskedPaths = c.MaskedPaths
	}
	if c.ReadonlyPaths != nil {
		l.ReadonlyPaths = c.ReadonlyPaths
	}
	if l.Seccomp, err = seccompProfile(c.Seccomp, c.SeccompProfile, c.Privileged); err != nil {
		return nil, err
	}
	if c.Privileged {
		l.MaskedPaths, l.ReadonlyPaths = nil, nil
		l.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	setResources(l.Resources, c.Resources)

	s.Mounts = mounts(c)
	for _, m := range c.Mounts {
		if m.Propagation == "rshared" {
			// A bidirectional mount propagates back to the host only if the
			// root it is made under stays shared (as containerd and CRI-O do).
			l.RootfsPropagation = "rshared"
		}
	}
	for _, d := range c.Devices {
		perms := d.Permissions
		if perms == "" {
			perms = "rwm"
		}
		dev, err := hostDevice(d.HostPath, d.ContainerPath)
		if err != nil {
			return nil, err
		}
		l.Devices = append(l.Devices, dev)
		major, minor := dev.Major, dev.Minor
		l.Resources.Devices = append(l.Resources.Devices, specs.LinuxDeviceCgroup{
			Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: perms,
		})
	}
	return s, nil
}

// processArgs follows Kubernetes: command replaces the entrypoint and drops
// the image's cmd; args alone replace the cmd.
func processArgs(img ocispec.ImageConfig, c *ContainerConfig) []string {
	switch {
	case len(c.Command) > 0:
		return append(slices.Clone(c.Command), c.Args...)
	case len(c.Args) > 0:
		return append(slices.Clone(img.Entrypoint), c.Args...)
	default:
		return append(slices.Clone(img.Entrypoint), img.Cmd...)
	}
}

// mergeEnv puts over the image's variables those of the container, keeping
// the image's order and a default PATH when neither sets one.
func mergeEnv(image, extra []string) []string {
	out := []string{}
	idx := map[string]int{}
	add := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			return
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range image {
		add(kv)
	}
	for _, kv := range extra {
		add(kv)
	}
	if _, ok := idx["PATH"]; !ok {
		out = append([]string{defaults.DefaultPath}, out...)
	}
	return out
}

func namespaces(n Namespaces) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace}}
	add := func(t specs.LinuxNamespaceType, path string, host bool) {
		if !host {
			ns = append(ns, specs.LinuxNamespace{Type: t, Path: path})
		}
	}
	add(specs.NetworkNamespace, n.Network, n.HostNetwork)
	add(specs.IPCNamespace, n.IPC, n.HostIPC)
	add(specs.UTSNamespace, n.UTS, n.HostNetwork)
	add(specs.PIDNamespace, n.PID, n.HostPID)
	add(specs.UserNamespace, n.User, n.User == "")
	return ns
}
