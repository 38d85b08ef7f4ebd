// Package metrics defines restored's Prometheus metrics: gRPC request counts
// and latencies (an interceptor), raft state, and restores and hosts by
// state and each asset's verification trend (read from the state store at
// scrape time).
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	restorev1 "github.com/restored/restored/api/gen/restore/v1"
	"github.com/restored/restored/internal/raftnode"
	"github.com/restored/restored/internal/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// Metrics holds the registry and the request metrics.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New registers every metric.
func New(st *store.Store, node *raftnode.Node) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "restored_grpc_requests_total", Help: "gRPC requests handled, by method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "restored_grpc_request_duration_seconds", Help: "gRPC unary request latency.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"method"}),
	}
	m.reg.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "restored_raft_leader", Help: "1 when this server leads."},
			func() float64 {
				if node.IsLeader() {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "restored_raft_commit_index", Help: "Raft commit index."},
			func() float64 { return float64(node.CommitIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "restored_raft_applied_index", Help: "Index applied to the state store."},
			func() float64 { return float64(node.AppliedIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "restored_raft_dir_free_bytes", Help: "Free space of the raft directory's filesystem; below --raft-min-free-mib writes are refused."},
			func() float64 { return float64(node.FreeBytes()) }),
		&stateCollector{st: st},
		&verificationCollector{st: st},
	)
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// UnaryInterceptor counts and times unary calls.
func (m *Metrics) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.latency.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
		m.requests.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
		return resp, err
	}
}

// StreamInterceptor counts streams when they end.
func (m *Metrics) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, ss)
		m.requests.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
		return err
	}
}

var (
	restoresDesc = prometheus.NewDesc("restored_restores", "Restores by state.", []string{"state"}, nil)
	hostsDesc    = prometheus.NewDesc("restored_hosts", "Hosts by state.", []string{"state"}, nil)
)

type stateCollector struct{ st *store.Store }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- restoresDesc
	ch <- hostsDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.st.Read(nil)
	counts := map[string]int{}
	for _, v := range restorev1.RestoreState_name {
		counts[v] = 0
	}
	delete(counts, restorev1.RestoreState_RESTORE_STATE_UNSPECIFIED.String())
	for state, n := range r.RestoreCounts() { // kept by the FSM: no walk
		counts[state.String()] = n
	}
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(restoresDesc, prometheus.GaugeValue, float64(n), s)
	}
	hosts := map[string]int{"HOST_STATE_READY": 0, "HOST_STATE_DOWN": 0}
	for _, h := range r.Hosts() {
		hosts[h.State.String()]++
	}
	for s, n := range hosts {
		ch <- prometheus.MustNewConstMetric(hostsDesc, prometheus.GaugeValue, float64(n), s)
	}
}
