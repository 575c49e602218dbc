package poller

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// family is one per-source metric kept as bare numbers and turned into
// Prometheus metrics only when scraped. client_golang's vectors keep a
// metric object, its label pairs and a creation timestamp per series
// (~450 bytes); ten thousand sources with ~20 series each made that
// 85 MiB. Here a source's series of one family are one small block.
type family struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	// values are the second label's values, fixed up front (outcomes,
	// transition kinds); nil for a family labelled by source alone or
	// whose second label takes any value (open).
	values []string
	open   bool
	// buckets makes the family a histogram labelled by source alone (typ
	// is then ignored).
	buckets []float64

	mu     sync.RWMutex
	series map[string]*perSource
}

// perSource is one source's series of a family.
type perSource struct {
	// vals are the values as float64 bits, one per family.values (or one
	// for source alone); a histogram's sum.
	vals []atomic.Uint64
	// counts are a histogram's observations per bucket, then +Inf.
	counts []atomic.Uint64
	// open holds the series of second-label values not in
	// family.values, by value.
	mu   sync.Mutex
	open map[string]*atomic.Uint64
}

func newFamily(name, help string, typ prometheus.ValueType, labels ...string) *family {
	return &family{desc: prometheus.NewDesc(name, help, labels, nil), typ: typ, series: map[string]*perSource{}}
}

// withValues fixes the second label's values; withOpen lets it take any.
func (f *family) withValues(v []string) *family { f.values = v; return f }
func (f *family) withOpen() *family             { f.open = true; return f }

func newHistogramFamily(name, help string, buckets []float64, labels ...string) *family {
	f := newFamily(name, help, prometheus.UntypedValue, labels...)
	f.buckets = buckets
	return f
}

// handle is one series, as WithLabelValues of a client_golang vector
// returns.
type handle struct {
	f    *family
	ps   *perSource
	bits *atomic.Uint64
}

// WithLabelValues returns the series of (source[, value]), creating it.
func (f *family) WithLabelValues(lvs ...string) handle {
	ps := f.source(lvs[0])
	h := handle{f: f, ps: ps}
	if len(lvs) == 1 {
		h.bits = &ps.vals[0]
		return h
	}
	if i := slices.Index(f.values, lvs[1]); i >= 0 {
		h.bits = &ps.vals[i]
		return h
	}
	// An open family's values, or one a fixed family did not list.
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if h.bits = ps.open[lvs[1]]; h.bits == nil {
		h.bits = new(atomic.Uint64)
		if ps.open == nil {
			ps.open = map[string]*atomic.Uint64{}
		}
		ps.open[lvs[1]] = h.bits
	}
	return h
}

func (f *family) source(name string) *perSource {
	f.mu.RLock()
	ps := f.series[name]
	f.mu.RUnlock()
	if ps != nil {
		return ps
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ps = f.series[name]; ps == nil {
		ps = &perSource{}
		ps.vals = make([]atomic.Uint64, max(len(f.values), 1))
		if f.buckets != nil {
			ps.counts = make([]atomic.Uint64, len(f.buckets)+1)
		}
		f.series[name] = ps
	}
	return ps
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
		old := h.bits.Load()
		if h.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (h handle) Set(v float64) { h.bits.Store(math.Float64bits(v)) }

// Observe adds v to a histogram.
func (h handle) Observe(v float64) {
	i, _ := slices.BinarySearch(h.f.buckets, v)
	h.ps.counts[i].Add(1)
	h.Add(v)
}

// Describe implements prometheus.Collector.
func (f *family) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

// Collect implements prometheus.Collector.
func (f *family) Collect(ch chan<- prometheus.Metric) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for source, ps := range f.series {
		switch {
		case f.buckets != nil:
			cum := make(map[float64]uint64, len(f.buckets))
			var n uint64
			for j, b := range f.buckets {
				n += ps.counts[j].Load()
				cum[b] = n
			}
			n += ps.counts[len(f.buckets)].Load()
			ch <- prometheus.MustNewConstHistogram(f.desc, n, load(&ps.vals[0]), cum, source)
		case f.open || f.values != nil:
			for i, v := range f.values {
				ch <- prometheus.MustNewConstMetric(f.desc, f.typ, load(&ps.vals[i]), source, v)
			}
			ps.mu.Lock()
			for v, bits := range ps.open {
				ch <- prometheus.MustNewConstMetric(f.desc, f.typ, load(bits), source, v)
			}
			ps.mu.Unlock()
		default:
			ch <- prometheus.MustNewConstMetric(f.desc, f.typ, load(&ps.vals[0]), source)
		}
	}
}

func load(bits *atomic.Uint64) float64 { return math.Float64frombits(bits.Load()) }
