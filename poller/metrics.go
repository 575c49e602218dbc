package poller

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the poller's Prometheus metrics.
type Metrics struct {
	polls       *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	tracked     *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	requests    *prometheus.CounterVec
	up          *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	watches     *prometheus.GaugeVec
	heldDeletes *prometheus.CounterVec
	// detectionDelay is observed by adaptive watch sources only.
	detectionDelay *prometheus.HistogramVec
	transitionKs   []string
}

// NewMetrics registers the poller's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollrelay_polls_total", Help: "Polls of a source by outcome.",
		}, []string{"source", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pollrelay_poll_duration_seconds", Help: "Time a poll took, all pages and the diff included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"source"}),
		tracked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pollrelay_items_tracked", Help: "Items a source currently tracks.",
		}, []string{"source"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollrelay_transitions_total", Help: "Transitions detected, by kind (created, changed, deleted, stalled, watch_expired).",
		}, []string{"source", "type"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollrelay_upstream_requests_total", Help: "HTTP responses from upstreams by status code; code 0 is a request that got no response.",
		}, []string{"source", "code"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pollrelay_source_up", Help: "1 when the last poll of a source succeeded.",
		}, []string{"source"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pollrelay_source_last_success_timestamp_seconds", Help: "Unix time of a source's last successful poll.",
		}, []string{"source"}),
		watches: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pollrelay_watches_active", Help: "Ids a watch source currently polls.",
		}, []string{"source"}),
		heldDeletes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollrelay_mass_deletes_held_total", Help: "Listings whose deletions the mass-delete guard held back (max_delete_ratio, confirm_polls).",
		}, []string{"source"}),
		detectionDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pollrelay_detection_delay_seconds",
			Help:    "Estimated time from a watched item's transition to the poll that saw it: half the gap between the polls before and after it.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 12),
		}, []string{"source"}),
		transitionKs: []string{"created", "changed", "deleted", "stalled", "watch_expired"},
	}
	reg.MustRegister(m.polls, m.duration, m.tracked, m.transitions, m.requests, m.up, m.lastSuccess, m.watches, m.heldDeletes, m.detectionDelay)
	return m
}

// initSource creates a source's label values so they show from startup.
func (m *Metrics) initSource(name string) {
	for _, o := range Outcomes {
		m.polls.WithLabelValues(name, o)
	}
	for _, k := range m.transitionKs {
		m.transitions.WithLabelValues(name, k)
	}
	m.duration.WithLabelValues(name)
	m.tracked.WithLabelValues(name)
	m.up.WithLabelValues(name)
	m.lastSuccess.WithLabelValues(name)
	m.watches.WithLabelValues(name)
	m.heldDeletes.WithLabelValues(name)
}

// dropSource removes a source's series when it is removed by a reload.
func (m *Metrics) dropSource(name string) {
	l := prometheus.Labels{"source": name}
	m.polls.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.tracked.DeletePartialMatch(l)
	m.transitions.DeletePartialMatch(l)
	m.requests.DeletePartialMatch(l)
	m.up.DeletePartialMatch(l)
	m.lastSuccess.DeletePartialMatch(l)
	m.watches.DeletePartialMatch(l)
	m.heldDeletes.DeletePartialMatch(l)
	m.detectionDelay.DeletePartialMatch(l)
}
