package containers

import (
	"runtime"
	"sync"
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
	var mine []store.Container
	for _, c := range all {
		if c.SandboxID == sb.ID {
			mine = append(mine, c)
		}
	}
	return s.podStats(sb, mine, full, false)
}

// PodsStats is PodStats of each of pods, read a few at a time (one reader
// a CPU: each pod costs a dozen cgroup files, and a node of a thousand pods
// read them one pod after the other for ~200 ms); pods whose stats cannot
// be read (removed meanwhile) are left out. The order is pods'. A writable
// layer measured within layerUsageFresh is not measured again: kubelet's
// eviction manager, summary API and resource metrics each list every pod.
func (s *Service) PodsStats(pods []store.Sandbox, all []store.Container, full bool) []PodStats {
	bySandbox := map[string][]store.Container{}
	for _, c := range all {
		bySandbox[c.SandboxID] = append(bySandbox[c.SandboxID], c)
	}
	out := make([]PodStats, len(pods))
	ok := make([]bool, len(pods))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(pods)) {
		wg.Go(func() {
			for i := range next {
				ps, err := s.podStats(pods[i], bySandbox[pods[i].ID], full, true)
				out[i], ok[i] = ps, err == nil
			}
		})
	}
	for i := range pods {
		next <- i
	}
	close(next)
	wg.Wait()
	kept := out[:0]
	for i, ps := range out {
		if ok[i] {
			kept = append(kept, ps)
		}
	}
	return kept
}

// podStats is PodStats with the pod's own containers.
func (s *Service) podStats(sb store.Sandbox, mine []store.Container, full, reuse bool) (ps PodStats, err error) {
	ps = PodStats{At: time.Now(), Sandbox: sb}
	if ps.Network, err = s.sandboxes.NetworkStats(sb); err != nil && sb.State == store.SandboxReady {
		return ps, err
	}
	for _, c := range mine {
		st, err := s.stats(c, full, reuse)
		if err != nil {
			continue // removed meanwhile
		}
		ps.Containers = append(ps.Containers, ContainerStats{c, st})
	}
	defer func() { ps.NanoCores, ps.HasRate = s.cpu.rate("pod:"+sb.ID, ps.At, ps.CPUNanos) }()
	if sb.CgroupParent != "" {
		if u, err := s.statFiles.CgroupStats(sb.CgroupParent, full); err == nil {
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
