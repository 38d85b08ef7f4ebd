// Package agentmetrics defines the hypervisor agent's Prometheus metrics:
// its restores by state, the time its guests took to boot, its libvirt
// calls (latency and errors by call), the bytes its NBD gate served and
// the free space of its work dir.
// Every method is a no-op on a nil *Metrics (an agent without
// --metrics-addr, and the tests).
package agentmetrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/restored/restored/internal/diskfree"
)

// Metrics holds the agent's registry and metrics.
type Metrics struct {
	reg        *prometheus.Registry
	restores   *prometheus.GaugeVec
	boot       prometheus.Histogram
	calls      *prometheus.HistogramVec
	callErrors *prometheus.CounterVec
	nbdServed  prometheus.Counter
}

// New registers every metric; workDir's free space is read at scrape time.
func New(workDir string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		restores: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "restored_agent_restores", Help: "Restores assigned to this host, by the state the control plane last gave them.",
		}, []string{"state"}),
		boot: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "restored_agent_boot_seconds", Help: "Time from a restore's start to its verified boot.",
			Buckets: prometheus.ExponentialBuckets(1, 1.6, 14),
		}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "restored_agent_libvirt_call_seconds", Help: "libvirt call latency, by call.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"call"}),
		callErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "restored_agent_libvirt_call_errors_total", Help: "libvirt calls that failed (libvirt's answer, a broken connection or a deadline), by call.",
		}, []string{"call"}),
		nbdServed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "restored_agent_nbd_bytes_served_total", Help: "Bytes the NBD gate sent to backup jobs (snapshots) and export clients (EXPORT restores).",
		}),
	}
	free := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "restored_agent_work_dir_free_bytes", Help: "Free bytes of the filesystem holding the agent's work dir (overlays, evidence).",
	}, func() float64 {
		free, err := diskfree.Bytes(workDir)
		if err != nil {
			return -1
		}
		return float64(free)
	})
	m.reg.MustRegister(m.restores, m.boot, m.calls, m.callErrors, m.nbdServed, free,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// SetRestores sets the restores by state (every state not given is 0).
func (m *Metrics) SetRestores(byState map[string]int) {
	if m == nil {
		return
	}
	m.restores.Reset()
	for s, n := range byState {
		m.restores.WithLabelValues(s).Set(float64(n))
	}
}

// ObserveBoot records a verified boot's time.
func (m *Metrics) ObserveBoot(d time.Duration) {
	if m == nil {
		return
	}
	m.boot.Observe(d.Seconds())
}

// ObserveCall records one libvirt call.
func (m *Metrics) ObserveCall(call string, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(call).Observe(took.Seconds())
	if err != nil {
		m.callErrors.WithLabelValues(call).Inc()
	}
}

// AddNBDServed counts bytes the NBD gate sent.
func (m *Metrics) AddNBDServed(n int64) {
	if m == nil {
		return
	}
	m.nbdServed.Add(float64(n))
}
