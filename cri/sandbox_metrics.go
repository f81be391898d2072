package cri

import (
	"context"
	"slices"
	"sort"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/containers"
	"github.com/berth-runtime/berth/internal/store"
)

// CRI metrics are cAdvisor's, by name, help and labels, so that kubelet's
// /metrics/cadvisor (PodAndContainerStatsFromCRI) serves what dashboards
// already query. Every metric has cAdvisor's labels first — container, id
// (the cgroup), image, name (the runtime's ID), namespace and pod — then
// its own. A CRI metric's value is an integer, so the "_seconds" ones are
// whole seconds.
var metricLabels = []string{"container", "id", "image", "name", "namespace", "pod"}

type metricDef struct {
	help  string
	typ   runtimeapi.MetricType
	extra []string
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

var metricDefs = map[string]metricDef{
	"container_blkio_device_usage_total":               {"Blkio device bytes usage", counter, []string{"device", "major", "minor", "operation"}},
	"container_cpu_cfs_periods_total":                  {"Number of elapsed enforcement period intervals.", counter, nil},
	"container_cpu_cfs_throttled_periods_total":        {"Number of throttled period intervals.", counter, nil},
	"container_cpu_cfs_throttled_seconds_total":        {"Total time duration the container has been throttled.", counter, nil},
	"container_cpu_system_seconds_total":               {"Cumulative system cpu time consumed in seconds.", counter, nil},
	"container_cpu_usage_seconds_total":                {"Cumulative cpu time consumed in seconds.", counter, []string{"cpu"}},
	"container_cpu_user_seconds_total":                 {"Cumulative user cpu time consumed in seconds.", counter, nil},
	"container_file_descriptors":                       {"Number of open file descriptors for the container.", gauge, nil},
	"container_fs_inodes_free":                         {"Number of available Inodes", gauge, []string{"device"}},
	"container_fs_inodes_total":                        {"Number of Inodes", gauge, []string{"device"}},
	"container_fs_limit_bytes":                         {"Number of bytes that can be consumed by the container on this filesystem.", gauge, []string{"device"}},
	"container_fs_reads_bytes_total":                   {"Cumulative count of bytes read", counter, []string{"device"}},
	"container_fs_reads_total":                         {"Cumulative count of reads completed", counter, []string{"device"}},
	"container_fs_usage_bytes":                         {"Number of bytes that are consumed by the container on this filesystem.", gauge, []string{"device"}},
	"container_fs_writes_bytes_total":                  {"Cumulative count of bytes written", counter, []string{"device"}},
	"container_fs_writes_total":                        {"Cumulative count of writes completed", counter, []string{"device"}},
	"container_hugetlb_max_usage_bytes":                {"Maximum hugepage usages in bytes", gauge, []string{"pagesize"}},
	"container_hugetlb_usage_bytes":                    {"Current hugepage usage in bytes", gauge, []string{"pagesize"}},
	"container_last_seen":                              {"Last time a container was seen by the exporter", gauge, nil},
	"container_memory_cache":                           {"Number of bytes of page cache memory.", gauge, nil},
	"container_memory_failcnt":                         {"Number of memory usage hits limits", counter, nil},
	"container_memory_failures_total":                  {"Cumulative count of memory allocation failures.", counter, []string{"failure_type", "scope"}},
	"container_memory_kernel_usage":                    {"Size of kernel memory allocated in bytes.", gauge, nil},
	"container_memory_mapped_file":                     {"Size of memory mapped files in bytes.", gauge, nil},
	"container_memory_max_usage_bytes":                 {"Maximum memory usage recorded in bytes", gauge, nil},
	"container_memory_rss":                             {"Size of RSS in bytes.", gauge, nil},
	"container_memory_swap":                            {"Container swap usage in bytes.", gauge, nil},
	"container_memory_usage_bytes":                     {"Current memory usage in bytes, including all memory regardless of when it was accessed", gauge, nil},
	"container_memory_working_set_bytes":               {"Current working set in bytes.", gauge, nil},
	"container_network_receive_bytes_total":            {"Cumulative count of bytes received", counter, []string{"interface"}},
	"container_network_receive_errors_total":           {"Cumulative count of errors encountered while receiving", counter, []string{"interface"}},
	"container_network_receive_packets_dropped_total":  {"Cumulative count of packets dropped while receiving", counter, []string{"interface"}},
	"container_network_receive_packets_total":          {"Cumulative count of packets received", counter, []string{"interface"}},
	"container_network_transmit_bytes_total":           {"Cumulative count of bytes transmitted", counter, []string{"interface"}},
	"container_network_transmit_errors_total":          {"Cumulative count of errors encountered while transmitting", counter, []string{"interface"}},
	"container_network_transmit_packets_dropped_total": {"Cumulative count of packets dropped while transmitting", counter, []string{"interface"}},
	"container_network_transmit_packets_total":         {"Cumulative count of packets transmitted", counter, []string{"interface"}},
	"container_oom_events_total":                       {"Count of out of memory events observed for the container", counter, nil},
	"container_pressure_cpu_stalled_seconds_total":     {"Total time duration no tasks in the container could make progress due to CPU congestion.", counter, nil},
	"container_pressure_cpu_waiting_seconds_total":     {"Total time duration tasks in the container have waited due to CPU congestion.", counter, nil},
	"container_pressure_io_stalled_seconds_total":      {"Total time duration no tasks in the container could make progress due to IO congestion.", counter, nil},
	"container_pressure_io_waiting_seconds_total":      {"Total time duration tasks in the container have waited due to IO congestion.", counter, nil},
	"container_pressure_memory_stalled_seconds_total":  {"Total time duration no tasks in the container could make progress due to memory congestion.", counter, nil},
	"container_pressure_memory_waiting_seconds_total":  {"Total time duration tasks in the container have waited due to memory congestion.", counter, nil},
	"container_processes":                              {"Number of processes running inside the container.", gauge, nil},
	"container_sockets":                                {"Number of open sockets for the container.", gauge, nil},
	"container_spec_cpu_period":                        {"CPU period of the container.", gauge, nil},
	"container_spec_cpu_quota":                         {"CPU quota of the container.", gauge, nil},
	"container_spec_cpu_shares":                        {"CPU share of the container.", gauge, nil},
	"container_spec_memory_limit_bytes":                {"Memory limit for the container.", gauge, nil},
	"container_spec_memory_reservation_limit_bytes":    {"Memory reservation limit for the container.", gauge, nil},
	"container_spec_memory_swap_limit_bytes":           {"Memory swap limit for the container.", gauge, nil},
	"container_start_time_seconds":                     {"Start time of the container since unix epoch in seconds.", gauge, nil},
	"container_threads":                                {"Number of threads running inside the container", gauge, nil},
	"container_threads_max":                            {"Maximum number of threads allowed inside the container, infinity if value is zero", gauge, nil},
	"container_ulimits_soft":                           {"Soft ulimit values for the container root process. Unlimited if -1, except priority and nice", gauge, []string{"ulimit"}},
}

// ListMetricDescriptors describes every metric ListPodSandboxMetrics reports.
func (s *Server) ListMetricDescriptors(ctx context.Context, r *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	names := make([]string, 0, len(metricDefs))
	for n := range metricDefs {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*runtimeapi.MetricDescriptor, len(names))
	for i, n := range names {
		d := metricDefs[n]
		out[i] = &runtimeapi.MetricDescriptor{Name: n, Help: d.help, LabelKeys: append(append([]string{}, metricLabels...), d.extra...)}
	}
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: out}, nil
}

// ListPodSandboxMetrics reports, for every ready pod, its network's
// metrics and its containers'.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, r *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	pods, all, err := s.podsAndContainers()
	if err != nil {
		return nil, err
	}
	pods = slices.DeleteFunc(pods, func(sb store.Sandbox) bool { return sb.State != store.SandboxReady })
	out := []*runtimeapi.PodSandboxMetrics{}
	for _, ps := range s.containers.PodsStats(pods, all, true) { // a pod stopped meanwhile is left out
		out = append(out, s.podMetrics(ps))
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: out}, nil
}

// metricSet collects one object's metrics under its base labels.
type metricSet struct {
	at   int64
	base []string
	out  []*runtimeapi.Metric
}

func (m *metricSet) add(name string, v uint64, extra ...string) {
	m.out = append(m.out, &runtimeapi.Metric{Name: name, Timestamp: m.at, MetricType: metricDefs[name].typ,
		LabelValues: append(append([]string{}, m.base...), extra...), Value: &runtimeapi.UInt64Value{Value: v}})
}

func (s *Server) podMetrics(ps containers.PodStats) *runtimeapi.PodSandboxMetrics {
	sb := ps.Sandbox
	// The pod's own series are cAdvisor's for the pod cgroup: no container.
	pod := &metricSet{at: ps.At.UnixNano(), base: []string{"", sb.CgroupParent, "", sb.ID, sb.Namespace, sb.Name}}
	for _, i := range ps.Network {
		pod.add("container_network_receive_bytes_total", i.RxBytes, i.Name)
		pod.add("container_network_receive_packets_total", i.RxPackets, i.Name)
		pod.add("container_network_receive_errors_total", i.RxErrors, i.Name)
		pod.add("container_network_receive_packets_dropped_total", i.RxDropped, i.Name)
		pod.add("container_network_transmit_bytes_total", i.TxBytes, i.Name)
		pod.add("container_network_transmit_packets_total", i.TxPackets, i.Name)
		pod.add("container_network_transmit_errors_total", i.TxErrors, i.Name)
		pod.add("container_network_transmit_packets_dropped_total", i.TxDropped, i.Name)
	}
	out := &runtimeapi.PodSandboxMetrics{PodSandboxId: sb.ID, Metrics: pod.out}
	for _, c := range ps.Containers {
		out.ContainerMetrics = append(out.ContainerMetrics, &runtimeapi.ContainerMetrics{
			ContainerId: c.Container.ID, Metrics: s.containerMetrics(sb, c)})
	}
	return out
}

func (s *Server) containerMetrics(sb store.Sandbox, c containers.ContainerStats) []*runtimeapi.Metric {
	rec, u := c.Container, c.CgroupUsage
	m := &metricSet{at: c.At.UnixNano(), base: []string{rec.Name, rec.CgroupsPath, rec.ImageRef, rec.ID, sb.Namespace, sb.Name}}
	sec := func(ns uint64) uint64 { return ns / 1e9 }
	m.add("container_cpu_usage_seconds_total", sec(u.CPUNanos), "total")
	m.add("container_cpu_user_seconds_total", sec(u.UserNanos))
	m.add("container_cpu_system_seconds_total", sec(u.SystemNanos))
	m.add("container_cpu_cfs_periods_total", u.Periods)
	m.add("container_cpu_cfs_throttled_periods_total", u.ThrottledPeriods)
	m.add("container_cpu_cfs_throttled_seconds_total", sec(u.ThrottledNanos))
	m.add("container_memory_usage_bytes", u.Memory)
	m.add("container_memory_working_set_bytes", u.WorkingSet)
	m.add("container_memory_rss", u.RSS)
	m.add("container_memory_cache", u.Cache)
	m.add("container_memory_mapped_file", u.MappedFile)
	m.add("container_memory_kernel_usage", u.Kernel)
	m.add("container_memory_max_usage_bytes", u.MaxMemory)
	m.add("container_memory_swap", u.Swap)
	m.add("container_memory_failcnt", u.Failcnt)
	m.add("container_oom_events_total", u.OOMKills)
	for _, scope := range []string{"container", "hierarchy"} {
		m.add("container_memory_failures_total", u.PageFaults, "pgfault", scope)
		m.add("container_memory_failures_total", u.MajorFaults, "pgmajfault", scope)
	}
	m.add("container_processes", u.Pids)
	m.add("container_threads", u.Pids)
	m.add("container_threads_max", u.PidsMax)
	for dev, io := range u.IO {
		major, minor, _ := strings.Cut(dev, ":")
		m.add("container_blkio_device_usage_total", io.ReadBytes, dev, major, minor, "Read")
		m.add("container_blkio_device_usage_total", io.WriteBytes, dev, major, minor, "Write")
		m.add("container_fs_reads_bytes_total", io.ReadBytes, dev)
		m.add("container_fs_writes_bytes_total", io.WriteBytes, dev)
		m.add("container_fs_reads_total", io.Reads, dev)
		m.add("container_fs_writes_total", io.Writes, dev)
	}
	for size, h := range u.Hugetlb {
		m.add("container_hugetlb_usage_bytes", h[0], size)
		m.add("container_hugetlb_max_usage_bytes", h[1], size)
	}
	for res, p := range u.Pressure {
		m.add("container_pressure_"+res+"_waiting_seconds_total", uint64(p[0].Seconds()))
		m.add("container_pressure_"+res+"_stalled_seconds_total", uint64(p[1].Seconds()))
	}
	dev := c.LayerRoot
	m.add("container_fs_usage_bytes", c.LayerBytes, dev)
	m.add("container_fs_limit_bytes", c.FsBytes, dev)
	m.add("container_fs_inodes_total", c.FsInodes, dev)
	m.add("container_fs_inodes_free", c.FsInodesFree, dev)
	p := s.containers.ProcessStats(rec)
	m.add("container_file_descriptors", p.FileDescriptors)
	m.add("container_sockets", p.Sockets)
	m.add("container_ulimits_soft", p.OpenFilesLimit, "max_open_files")
	l := s.containers.Limits(rec)
	m.add("container_spec_cpu_period", l.CPUPeriod)
	m.add("container_spec_cpu_quota", l.CPUQuota)
	m.add("container_spec_cpu_shares", l.CPUShares)
	m.add("container_spec_memory_limit_bytes", l.Memory)
	m.add("container_spec_memory_reservation_limit_bytes", l.MemoryReservation)
	m.add("container_spec_memory_swap_limit_bytes", l.MemorySwap)
	if !rec.StartedAt.IsZero() {
		m.add("container_start_time_seconds", uint64(rec.StartedAt.Unix()))
	}
	m.add("container_last_seen", uint64(c.At.Unix()))
	return m.out
}
