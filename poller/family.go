package poller

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// family is one per-source metric kept as bare numbers and turned into
// Prometheus metrics only when scraped. client_golang's vectors keep a
// metric object, its label pairs and a creation timestamp per series
// (~450 bytes); ten thousand sources with ~20 series each made that
// 85 MiB, where a number here costs a map slot and 8 bytes.
type family struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	// buckets makes the family a histogram (typ is then ignored).
	buckets []float64

	mu sync.RWMutex
	// series maps a source to its series by the second label's value
	// ("" for a family labelled by source alone).
	series map[string]map[string]*series
}

type series struct {
	// bits is the value as float64 bits; a histogram's sum.
	bits atomic.Uint64
	// counts are a histogram's observations per bucket, then +Inf.
	counts []atomic.Uint64
}

func newFamily(name, help string, typ prometheus.ValueType, labels ...string) *family {
	return &family{desc: prometheus.NewDesc(name, help, labels, nil), typ: typ, series: map[string]map[string]*series{}}
}

func newHistogramFamily(name, help string, buckets []float64, labels ...string) *family {
	f := newFamily(name, help, prometheus.UntypedValue, labels...)
	f.buckets = buckets
	return f
}

// handle is one series, as WithLabelValues of a client_golang vector.
type handle struct {
	f *family
	s *series
}

// WithLabelValues returns the series of (source[, value]), creating it.
func (f *family) WithLabelValues(lvs ...string) handle {
	source, rest := lvs[0], ""
	if len(lvs) > 1 {
		rest = lvs[1]
	}
	f.mu.RLock()
	s := f.series[source][rest]
	f.mu.RUnlock()
	if s != nil {
		return handle{f, s}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	bySource := f.series[source]
	if bySource == nil {
		bySource = map[string]*series{}
		f.series[source] = bySource
	}
	if s = bySource[rest]; s == nil {
		s = &series{}
		if f.buckets != nil {
			s.counts = make([]atomic.Uint64, len(f.buckets)+1)
		}
		bySource[rest] = s
	}
	return handle{f, s}
}

// dropSource removes every series of source.
func (f *family) dropSource(source string) {
	f.mu.Lock()
	delete(f.series, source)
	f.mu.Unlock()
}

func (h handle) Inc() { h.Add(1) }

func (h handle) Add(v float64) {
	for {
		old := h.s.bits.Load()
		if h.s.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (h handle) Set(v float64) { h.s.bits.Store(math.Float64bits(v)) }

// Observe adds v to a histogram.
func (h handle) Observe(v float64) {
	i := len(h.f.buckets)
	for j, b := range h.f.buckets {
		if v <= b {
			i = j
			break
		}
	}
	h.s.counts[i].Add(1)
	h.Add(v)
}

// Describe implements prometheus.Collector.
func (f *family) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

// Collect implements prometheus.Collector.
func (f *family) Collect(ch chan<- prometheus.Metric) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for source, bySource := range f.series {
		for rest, s := range bySource {
			lvs := []string{source}
			if rest != "" {
				lvs = append(lvs, rest)
			}
			v := math.Float64frombits(s.bits.Load())
			if f.buckets == nil {
				ch <- prometheus.MustNewConstMetric(f.desc, f.typ, v, lvs...)
				continue
			}
			cum := make(map[float64]uint64, len(f.buckets))
			var n uint64
			for j, b := range f.buckets {
				n += s.counts[j].Load()
				cum[b] = n
			}
			n += s.counts[len(f.buckets)].Load()
			ch <- prometheus.MustNewConstHistogram(f.desc, n, v, cum, lvs...)
		}
	}
}
