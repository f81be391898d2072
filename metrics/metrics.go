// Package metrics is berthd's Prometheus instrumentation: one registry of its
// own (no global state), the metrics the services report through the hooks
// the daemon wires to them, gauges read from the store at scrape time, the Go
// runtime and process collectors, and the HTTP handler that serves them.
//
// Names follow Prometheus conventions: berth_ prefix, _total counters,
// _seconds and _bytes in base units. metrics imports nothing of Berth's.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// Metrics holds berthd's metrics and the registry they are served from.
type Metrics struct {
	reg *prometheus.Registry

	criRequests *prometheus.CounterVec
	criDuration *prometheus.HistogramVec

	pulls        *prometheus.CounterVec
	pullBytes    prometheus.Counter
	pullDuration prometheus.Histogram
	gcFreed      prometheus.Counter

	exits        *prometheus.CounterVec
	shimTimeouts *prometheus.CounterVec

	recovered        *prometheus.GaugeVec
	recoveryDuration prometheus.Gauge

	nriPlugins  prometheus.Gauge
	nriRequests *prometheus.CounterVec
	nriDuration *prometheus.HistogramVec
}

// Counts reads, at scrape time, how many objects are in each state.
type Counts func() map[string]int

// New registers every metric. pods and containers are read at each scrape
// (by state); liveShims counts the shims serving containers.
func New(pods, containers Counts, liveShims func() int) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		criRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_cri_requests_total", Help: "CRI requests served, by method and gRPC status code.",
		}, []string{"method", "code"}),
		criDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "berth_cri_request_duration_seconds", Help: "Time to serve a CRI request, by method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method"}),
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_image_pulls_total", Help: "Image pulls, by result (success or failure).",
		}, []string{"result"}),
		pullBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_image_pull_bytes_total", Help: "Bytes of images pulled (their layers and config, compressed).",
		}),
		pullDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "berth_image_pull_duration_seconds", Help: "Time to pull and unpack an image.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
		gcFreed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_image_gc_freed_bytes_total", Help: "Bytes of blobs freed by image garbage collection.",
		}),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_container_exits_total", Help: "Container exits, by reason (Completed, Error, OOMKilled).",
		}, []string{"reason"}),
		shimTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_shim_call_timeouts_total", Help: "Calls to a shim that did not answer in time, by call.",
		}, []string{"call"}),
		recovered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "berth_recovery_containers", Help: "What the last start-up recovery found, by outcome: reattached (running containers watched again; one that exited while berthd was away is recorded behind serving, as an exit), and exited, orphaned or removed (created containers it settled).",
		}, []string{"outcome"}),
		recoveryDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_recovery_duration_seconds", Help: "How long the last start-up recovery took.",
		}),
		nriPlugins: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_nri_plugins", Help: "NRI plugins connected and synchronized.",
		}),
		nriRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_nri_plugin_requests_total", Help: "Events sent to NRI plugins, by plugin, event and result (ok or error).",
		}, []string{"plugin", "event", "result"}),
		nriDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "berth_nri_plugin_request_duration_seconds", Help: "Time an NRI plugin took to answer an event, by event.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"event"}),
	}
	m.reg.MustRegister(m.criRequests, m.criDuration, m.pulls, m.pullBytes, m.pullDuration, m.gcFreed,
		m.exits, m.shimTimeouts, m.recovered, m.recoveryDuration, m.nriPlugins, m.nriRequests, m.nriDuration,
		stateGauge("berth_pods", "Pod sandboxes, by state.", pods),
		stateGauge("berth_containers", "Containers, by state.", containers),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "berth_shims", Help: "Live shims (one per container not yet exited)."},
			func() float64 { return float64(liveShims()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the registry in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// UnaryInterceptor counts and times every CRI call.
func (m *Metrics) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		method := info.FullMethod
		m.criDuration.WithLabelValues(method).Observe(time.Since(start).Seconds())
		m.criRequests.WithLabelValues(method, status.Code(err).String()).Inc()
		return resp, err
	}
}

// Pulled records one image pull.
func (m *Metrics) Pulled(bytes int64, took time.Duration, err error) {
	if err != nil {
		m.pulls.WithLabelValues("failure").Inc()
		return
	}
	m.pulls.WithLabelValues("success").Inc()
	m.pullBytes.Add(float64(bytes))
	m.pullDuration.Observe(took.Seconds())
}

// Freed records bytes freed by image garbage collection.
func (m *Metrics) Freed(bytes int64) { m.gcFreed.Add(float64(bytes)) }

// Exited records a container's exit.
func (m *Metrics) Exited(reason string) {
	if reason == "" {
		reason = "Unknown"
	}
	m.exits.WithLabelValues(reason).Inc()
}

// NRIPluginCall counts an event sent to an NRI plugin, by its result.
func (m *Metrics) NRIPluginCall(plugin, event string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.nriRequests.WithLabelValues(plugin, event, result).Inc()
}

// NRIPluginLatency records the time an NRI plugin took to answer an event.
func (m *Metrics) NRIPluginLatency(_, event string, took time.Duration) {
	m.nriDuration.WithLabelValues(event).Observe(took.Seconds())
}

// NRIPlugins sets how many NRI plugins are connected.
func (m *Metrics) NRIPlugins(n int) { m.nriPlugins.Set(float64(n)) }

// ShimTimedOut records a shim call that got no answer in time.
func (m *Metrics) ShimTimedOut(call string) { m.shimTimeouts.WithLabelValues(call).Inc() }

// Recovered records what the start-up recovery did.
func (m *Metrics) Recovered(outcomes map[string]int, took time.Duration) {
	for _, o := range []string{"reattached", "exited", "orphaned", "removed"} {
		m.recovered.WithLabelValues(o).Set(float64(outcomes[o]))
	}
	m.recoveryDuration.Set(took.Seconds())
}

// stateGauge is a gauge vector computed at scrape time.
func stateGauge(name, help string, counts Counts) prometheus.Collector {
	return &stateCollector{desc: prometheus.NewDesc(name, help, []string{"state"}, nil), counts: counts}
}

type stateCollector struct {
	desc   *prometheus.Desc
	counts Counts
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	for state, n := range c.counts() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), state)
	}
}
