package poller

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestFamiliesExposeWhatVectorsWould: counters of fixed and other label
// values, gauges and histograms read back as client_golang's vectors
// would show them, and a dropped source's series go.
func TestFamiliesExposeWhatVectorsWould(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.initSource("a")
	m.polls.WithLabelValues("a", OutcomeSuccess).Inc()
	m.polls.WithLabelValues("a", OutcomeSuccess).Add(2)
	m.polls.WithLabelValues("a", "unlisted").Inc() // not in Outcomes: kept apart, still shown
	m.requests.WithLabelValues("a", "304").Inc()
	m.up.WithLabelValues("a").Set(1)
	for _, v := range []float64{0.001, 0.02, 100} {
		m.duration.WithLabelValues("a").Observe(v)
	}
	polls := map[string]int{OutcomeSuccess: 3, "unlisted": 1}
	outcomes := slices.Sorted(slices.Values(append(slices.Clone(Outcomes), "unlisted")))
	var want strings.Builder
	want.WriteString("# HELP pollrelay_polls_total Polls of a source by outcome.\n# TYPE pollrelay_polls_total counter\n")
	for _, o := range outcomes {
		fmt.Fprintf(&want, "pollrelay_polls_total{outcome=%q,source=\"a\"} %d\n", o, polls[o])
	}
	want.WriteString(`# HELP pollrelay_upstream_requests_total HTTP responses from upstreams by status code; code 0 is a request that got no response.
# TYPE pollrelay_upstream_requests_total counter
pollrelay_upstream_requests_total{code="304",source="a"} 1
# HELP pollrelay_source_up 1 when the last poll of a source succeeded.
# TYPE pollrelay_source_up gauge
pollrelay_source_up{source="a"} 1
`)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want.String()), "pollrelay_polls_total", "pollrelay_upstream_requests_total", "pollrelay_source_up"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "pollrelay_poll_duration_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 3 || h.GetSampleSum() != 100.021 {
			t.Errorf("histogram count %d sum %v, want 3 and 100.021", h.GetSampleCount(), h.GetSampleSum())
		}
		if b := h.GetBucket(); b[0].GetCumulativeCount() != 1 || b[2].GetCumulativeCount() != 2 || b[len(b)-1].GetCumulativeCount() != 2 {
			t.Errorf("buckets %v: want 1 at 5ms, 2 from 31ms, 100 s above the last", b)
		}
	}
	m.dropSource("a")
	if n := seriesOf(t, reg, "a"); n != 0 {
		t.Errorf("%d series of a dropped source", n)
	}
}
