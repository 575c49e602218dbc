package notifier

import "github.com/prometheus/client_golang/prometheus"

// Delivery outcomes label pollrelay_deliveries_total and attempt records.
const (
	OutcomeSuccess    = "success"
	OutcomeHTTPError  = "http_error"
	OutcomeTimeout    = "timeout"
	OutcomeConnection = "connection_error"
	OutcomePayload    = "payload_error"
)

var outcomes = []string{OutcomeSuccess, OutcomeHTTPError, OutcomeTimeout, OutcomeConnection, OutcomePayload}

// queueStates label pollrelay_delivery_queue.
var queueStates = []string{"pending", "retrying", "dead"}

// Metrics are the notifier's Prometheus metrics.
type Metrics struct {
	deliveries *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	queue      *prometheus.GaugeVec
	lag        prometheus.Histogram
}

// NewMetrics registers the notifier's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollrelay_deliveries_total", Help: "Delivery attempts by outcome.",
		}, []string{"subscription", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pollrelay_delivery_duration_seconds", Help: "Time from sending a webhook to its response.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 10),
		}, []string{"subscription"}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pollrelay_delivery_queue", Help: "Deliveries not yet delivered, by state (pending, retrying, dead).",
		}, []string{"subscription", "state"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pollrelay_event_delivery_lag_seconds", Help: "Time from an event being written to its first 2xx.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 14),
		}),
	}
	reg.MustRegister(m.deliveries, m.duration, m.queue, m.lag)
	return m
}

func (m *Metrics) initSubscription(id string) {
	for _, o := range outcomes {
		m.deliveries.WithLabelValues(id, o)
	}
	m.duration.WithLabelValues(id)
	for _, s := range queueStates {
		m.queue.WithLabelValues(id, s)
	}
}

func (m *Metrics) dropSubscription(id string) {
	l := prometheus.Labels{"subscription": id}
	m.deliveries.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.queue.DeletePartialMatch(l)
}
