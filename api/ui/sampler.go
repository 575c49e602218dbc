package ui

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// window is how far back the charts look.
const window = time.Hour

// sample is the delivery counters and queue depth at one instant.
type sample struct {
	at                time.Time
	delivered, failed float64 // cumulative attempts by outcome
	lagSum, lagCount  float64 // event written → 2xx, cumulative
	queue             int
}

// Sampler keeps an hour of samples in memory for the console's charts:
// pollrelay's own delivery metrics and the notifier's queue lengths, read
// every Every. Nothing is stored; a restart starts the charts afresh.
type Sampler struct {
	Every time.Duration

	gatherer prometheus.Gatherer
	queue    func() int
	now      func() time.Time

	mu      sync.Mutex
	samples []sample
}

// NewSampler reads g (nil: no delivery counts) and queue.
func NewSampler(g prometheus.Gatherer, queue func() int, now func() time.Time) *Sampler {
	return &Sampler{Every: 15 * time.Second, gatherer: g, queue: queue, now: now}
}

// Run samples until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.Every)
	defer t.Stop()
	for {
		s.Sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sample records one sample now.
func (s *Sampler) Sample() {
	sm := sample{at: s.now(), queue: s.queue()}
	if s.gatherer != nil {
		if fams, err := s.gatherer.Gather(); err == nil {
			for _, f := range fams {
				switch f.GetName() {
				case "pollrelay_deliveries_total":
					for _, m := range f.GetMetric() {
						v := m.GetCounter().GetValue()
						if outcome(m) == "success" {
							sm.delivered += v
						} else {
							sm.failed += v
						}
					}
				case "pollrelay_event_delivery_lag_seconds":
					for _, m := range f.GetMetric() {
						sm.lagSum += m.GetHistogram().GetSampleSum()
						sm.lagCount += float64(m.GetHistogram().GetSampleCount())
					}
				}
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, sm)
	cut := 0
	for cut < len(s.samples)-1 && sm.at.Sub(s.samples[cut].at) > window+time.Minute {
		cut++
	}
	s.samples = s.samples[cut:]
}

func outcome(m *dto.Metric) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == "outcome" {
			return l.GetValue()
		}
	}
	return ""
}

// series is per-minute values over the window, oldest first.
type series struct {
	delivered, failed, lag, queue [60]float64
	have                          [60]bool
}

func (s *Sampler) series() series {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out series
	end := s.now().Truncate(time.Minute).Add(time.Minute)
	slot := func(at time.Time) int { return 59 - int(end.Sub(at)/time.Minute) }
	var lagSum, lagN [60]float64
	for i, sm := range s.samples {
		k := slot(sm.at)
		if k < 0 || k > 59 {
			continue
		}
		out.queue[k], out.have[k] = float64(sm.queue), true
		if i == 0 {
			continue
		}
		prev := s.samples[i-1]
		out.delivered[k] += math.Max(sm.delivered-prev.delivered, 0)
		out.failed[k] += math.Max(sm.failed-prev.failed, 0)
		lagSum[k] += math.Max(sm.lagSum-prev.lagSum, 0)
		lagN[k] += math.Max(sm.lagCount-prev.lagCount, 0)
	}
	for k := range out.lag {
		if lagN[k] > 0 {
			out.lag[k] = lagSum[k] / lagN[k]
		}
	}
	return out
}

// Charts renders the window as small SVG bar charts. Only numbers and
// fixed labels go into them.
func (s *Sampler) Charts() template.HTML {
	se := s.series()
	var b strings.Builder
	chart(&b, "Deliveries per minute (2xx)", "ok", se.delivered[:], "%.0f")
	chart(&b, "Failed attempts per minute", "bad", se.failed[:], "%.0f")
	chart(&b, "Queue depth (pending + retrying)", "queue", se.queue[:], "%.0f")
	chart(&b, "Event → 2xx lag, mean seconds", "lag", se.lag[:], "%.3f")
	return template.HTML(b.String())
}

func chart(b *strings.Builder, title, class string, v []float64, format string) {
	const w, h, pad = 264.0, 72.0, 14.0
	top := 0.0
	for _, x := range v {
		top = math.Max(top, x)
	}
	fmt.Fprintf(b, `<figure class="chart %s"><figcaption>%s <span class="max">max `+format+`</span></figcaption>`, class, template.HTMLEscapeString(title), top)
	fmt.Fprintf(b, `<svg viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s">`, w, h+pad, w, h+pad, template.HTMLEscapeString(title))
	bw := w / float64(len(v))
	for i, x := range v {
		if top == 0 || x == 0 {
			continue
		}
		bh := x / top * h
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>`+format+`</title></rect>`, float64(i)*bw, h-bh, bw-1, bh, x)
	}
	fmt.Fprintf(b, `<line x1="0" y1="%.0f" x2="%.0f" y2="%.0f"/><text x="0" y="%.0f">−60 min</text><text x="%.0f" y="%.0f" text-anchor="end">now</text></svg></figure>`, h, w, h, h+pad-2, w, h+pad-2)
}
