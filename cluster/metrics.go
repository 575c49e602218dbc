package cluster

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the coordinator's Prometheus metrics.
type Metrics struct {
	members  prometheus.Gauge
	held     *prometheus.GaugeVec
	handoffs *prometheus.CounterVec
}

// NewMetrics registers the coordinator's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		members: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pollrelay_cluster_members", Help: "Live members of the cluster, as this member last saw them.",
		}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pollrelay_leases_held", Help: "Leases this member holds: source (a list source) or shard (a shard of a watch source's ids).",
		}, []string{"kind"}),
		handoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollrelay_lease_handoffs_total",
			Help: "Leases this member took over from another holder, by why the other let go (expired, released, rebalanced).",
		}, []string{"reason"}),
	}
	for _, k := range []string{KindSource, KindShard} {
		m.held.WithLabelValues(k)
	}
	for _, r := range Reasons {
		m.handoffs.WithLabelValues(r)
	}
	reg.MustRegister(m.members, m.held, m.handoffs)
	return m
}

func (m *Metrics) setMembers(n int) {
	if m != nil {
		m.members.Set(float64(n))
	}
}

func (m *Metrics) addHeld(name string, d float64) {
	if m == nil {
		return
	}
	if kind, _, _, ok := ParseLease(name); ok {
		m.held.WithLabelValues(kind).Add(d)
	}
}

func (m *Metrics) handoff(reason string) {
	if m != nil {
		m.handoffs.WithLabelValues(reason).Inc()
	}
}
