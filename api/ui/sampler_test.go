package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSamplerPerMinute turns cumulative counters sampled over time into
// per-minute deltas, keeps the queue depth of each minute's last sample,
// and forgets what is older than the window.
func TestSamplerPerMinute(t *testing.T) {
	reg := prometheus.NewRegistry()
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pollrelay_deliveries_total"}, []string{"subscription", "outcome"})
	lag := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pollrelay_event_delivery_lag_seconds"})
	reg.MustRegister(deliveries, lag)
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	queue := 0
	s := NewSampler(reg, func() int { return queue }, func() time.Time { return now })

	s.Sample() // 10:00:00, the counters' starting point
	now = now.Add(30 * time.Second)
	deliveries.WithLabelValues("app", "success").Add(3)
	deliveries.WithLabelValues("app", "http_error").Add(2)
	lag.Observe(1)
	lag.Observe(3)
	queue = 7
	s.Sample() // 10:00:30
	now = now.Add(time.Minute)
	deliveries.WithLabelValues("app", "success").Add(5)
	deliveries.WithLabelValues("other", "timeout").Add(1)
	queue = 4
	s.Sample() // 10:01:30

	se := s.series()
	if se.delivered[58] != 3 || se.failed[58] != 2 || se.queue[58] != 7 || se.lag[58] != 2 {
		t.Errorf("10:00: delivered %v failed %v queue %v lag %v", se.delivered[58], se.failed[58], se.queue[58], se.lag[58])
	}
	if se.delivered[59] != 5 || se.failed[59] != 1 || se.queue[59] != 4 || se.lag[59] != 0 {
		t.Errorf("10:01: delivered %v failed %v queue %v lag %v", se.delivered[59], se.failed[59], se.queue[59], se.lag[59])
	}
	if svg := s.Charts(); strings.Count(string(svg), "<rect") != 7 {
		t.Errorf("want 7 bars (2 delivered, 2 failed, 2 queue, 1 lag), got:\n%s", svg)
	}

	now = now.Add(2 * time.Hour)
	s.Sample()
	if len(s.samples) != 1 {
		t.Errorf("%d samples kept after two hours, want only the last", len(s.samples))
	}
	se = s.series()
	if se.delivered[58] != 0 || se.queue[58] != 0 {
		t.Error("old minutes still charted")
	}
}
