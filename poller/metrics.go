package poller

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the poller's Prometheus metrics. Each is a family of
// per-source series (family.go) rather than a client_golang vector: a
// source's ~20 series cost about a kilobyte instead of ten.
type Metrics struct {
	polls       *family
	duration    *family
	tracked     *family
	transitions *family
	requests    *family
	up          *family
	lastSuccess *family
	watches     *family
	heldDeletes *family
	// detectionDelay is observed by adaptive watch sources only.
	detectionDelay *family
}

// transitionKinds label pollrelay_transitions_total.
var transitionKinds = []string{"created", "changed", "deleted", "stalled", "watch_expired"}

// NewMetrics registers the poller's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	m := &Metrics{
		polls: newFamily("pollrelay_polls_total", "Polls of a source by outcome.", counter, "source", "outcome").withValues(Outcomes),
		duration: newHistogramFamily("pollrelay_poll_duration_seconds", "Time a poll took, all pages and the diff included.",
			prometheus.ExponentialBuckets(0.005, 2.5, 10), "source"),
		tracked: newFamily("pollrelay_items_tracked", "Items a source currently tracks.", gauge, "source"),
		transitions: newFamily("pollrelay_transitions_total", "Transitions detected, by kind (created, changed, deleted, stalled, watch_expired).",
			counter, "source", "type").withValues(transitionKinds),
		requests: newFamily("pollrelay_upstream_requests_total", "HTTP responses from upstreams by status code; code 0 is a request that got no response.",
			counter, "source", "code").withOpen(),
		up:          newFamily("pollrelay_source_up", "1 when the last poll of a source succeeded.", gauge, "source"),
		lastSuccess: newFamily("pollrelay_source_last_success_timestamp_seconds", "Unix time of a source's last successful poll.", gauge, "source"),
		watches:     newFamily("pollrelay_watches_active", "Ids a watch source currently polls.", gauge, "source"),
		heldDeletes: newFamily("pollrelay_mass_deletes_held_total", "Listings whose deletions the mass-delete guard held back (max_delete_ratio, confirm_polls).",
			counter, "source"),
		detectionDelay: newHistogramFamily("pollrelay_detection_delay_seconds",
			"Estimated time from a watched item's transition to the poll that saw it: half the gap between the polls before and after it.",
			prometheus.ExponentialBuckets(0.5, 2, 12), "source"),
	}
	reg.MustRegister(m.polls, m.duration, m.tracked, m.transitions, m.requests, m.up, m.lastSuccess, m.watches, m.heldDeletes, m.detectionDelay)
	return m
}

// initSource creates a source's label values so they show from startup.
func (m *Metrics) initSource(name string) {
	// A fixed family's source has every value from its first use.
	m.polls.WithLabelValues(name, Outcomes[0])
	m.transitions.WithLabelValues(name, transitionKinds[0])
	m.duration.WithLabelValues(name)
	m.tracked.WithLabelValues(name)
	m.up.WithLabelValues(name)
	m.lastSuccess.WithLabelValues(name)
	m.watches.WithLabelValues(name)
	m.heldDeletes.WithLabelValues(name)
}

// dropSource removes a source's series when it is removed by a reload.
func (m *Metrics) dropSource(name string) {
	for _, f := range []*family{m.polls, m.duration, m.tracked, m.transitions, m.requests, m.up, m.lastSuccess, m.watches, m.heldDeletes, m.detectionDelay} {
		f.dropSource(name)
	}
}
