package containers

import (
	"time"

	"github.com/berth-runtime/berth/internal/store"
	"github.com/berth-runtime/berth/oci/linux"
	"github.com/berth-runtime/berth/sandbox"
)

// PodStats is what a pod has used: its cgroup's counters (kubelet's pod
// cgroup when it gave one; else the sum of its containers'), its network
// interfaces, and each container's Stats.
type PodStats struct {
	At      time.Time
	Sandbox store.Sandbox
	linux.CgroupUsage
	Network    []sandbox.Interface
	Containers []ContainerStats
	// NanoCores is the pod's CPU rate since its previous PodStats.
	NanoCores uint64
	HasRate   bool
}

// ContainerStats is a container and its Stats.
type ContainerStats struct {
	Container store.Container
	Stats
}

// PodStats reads pod sb's usage now; all are the containers to look among
// for its own (List's answer, read once for many pods). full reads every
// counter of the cgroups (for metrics), not only kubelet's stats'.
func (s *Service) PodStats(sb store.Sandbox, all []store.Container, full bool) (ps PodStats, err error) {
	ps = PodStats{At: time.Now(), Sandbox: sb}
	if ps.Network, err = s.sandboxes.NetworkStats(sb); err != nil && sb.State == store.SandboxReady {
		return ps, err
	}
	for _, c := range all {
		if c.SandboxID != sb.ID {
			continue
		}
		st, err := s.stats(c, full)
		if err != nil {
			continue // removed meanwhile
		}
		ps.Containers = append(ps.Containers, ContainerStats{c, st})
	}
	defer func() { ps.NanoCores, ps.HasRate = s.cpu.rate("pod:"+sb.ID, ps.At, ps.CPUNanos) }()
	if sb.CgroupParent != "" {
		if u, err := linux.CgroupStats(sb.CgroupParent, full); err == nil {
			ps.CgroupUsage = u
			return ps, nil
		}
	}
	for _, c := range ps.Containers {
		u := c.CgroupUsage
		ps.CPUNanos += u.CPUNanos
		ps.UserNanos += u.UserNanos
		ps.SystemNanos += u.SystemNanos
		ps.Memory += u.Memory
		ps.WorkingSet += u.WorkingSet
		ps.RSS += u.RSS
		ps.Cache += u.Cache
		ps.PageFaults += u.PageFaults
		ps.MajorFaults += u.MajorFaults
		ps.Swap += u.Swap
		ps.Pids += u.Pids
	}
	return ps, nil
}

// ProcessStats are the counters of a running container's processes that
// cost a walk of /proc, kept out of Stats (kubelet asks for those every
// few seconds): open files, sockets, and the init's soft open-files limit.
type ProcessStats struct {
	FileDescriptors, Sockets, OpenFilesLimit uint64
}

// ProcessStats walks the processes of container rec's cgroup.
func (s *Service) ProcessStats(rec store.Container) ProcessStats {
	var ps ProcessStats
	path, err := cgroupsPath(rec)
	if err != nil || rec.State != store.ContainerRunning {
		return ps
	}
	pids, err := linux.CgroupProcs(path)
	if err != nil {
		return ps
	}
	ps.FileDescriptors, ps.Sockets = linux.OpenFiles(pids)
	ps.OpenFilesLimit = linux.OpenFilesSoftLimit(rec.Pid)
	return ps
}

// Limits reads the limits container rec's cgroup holds now.
func (s *Service) Limits(rec store.Container) linux.CgroupLimits {
	path, err := cgroupsPath(rec)
	if err != nil {
		return linux.CgroupLimits{}
	}
	l, _ := linux.CgroupLimitsOf(path)
	return l
}
