// Package adaptive schedules polls of a watched item from how long items of
// the same source usually stay in its current state.
//
// It is pure: no clock, no I/O. The poller feeds it durations (Observe) and
// asks when to poll next (NextPoll); bench/adaptive replays a synthetic
// workload through the very same code.
package adaptive

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Bucket layout: bucket i covers [bucketBase·r^i, bucketBase·r^(i+1)) with
// r = 2^(1/4), so each bucket is ~19% wide and 96 of them span 100ms to
// ~19 days. Relative width is what matters for durations that are roughly
// log-normal: a fixed width would either blur short states or waste
// buckets on long ones. Bucket 0 also takes anything shorter and the last
// bucket anything longer.
const (
	NumBuckets = 96
	bucketBase = 100 * time.Millisecond
	bucketsPer = 4 // buckets per doubling
)

// HalfLife is the number of observations after which an old observation
// counts half: the estimate follows drift in an upstream's behaviour
// within a few thousand transitions instead of averaging over all time.
const HalfLife = 1000

// kernel spreads one observation over neighbouring buckets (binomial
// weights, ±2 buckets ≈ ±41%). With the few tens of observations the
// scheduler starts from, raw buckets are mostly empty, and an empty bucket
// reads as "no transition ever happens here", which would make the
// scheduler skip straight over it.
var kernel = [5]float64{1.0 / 16, 4.0 / 16, 6.0 / 16, 4.0 / 16, 1.0 / 16}

// Histogram is a decayed, log-bucketed estimate of how long items stay in
// one state. The zero value is empty and ready to use.
type Histogram struct {
	// Counts is the decayed weight per bucket.
	Counts [NumBuckets]float64 `json:"counts"`
	// Total is the sum of Counts: the decayed number of observations.
	Total float64 `json:"total"`
}

// bucketOf returns the bucket a duration falls in.
func bucketOf(d time.Duration) int {
	if d <= bucketBase {
		return 0
	}
	i := int(math.Floor(math.Log2(float64(d)/float64(bucketBase)) * bucketsPer))
	return min(max(i, 0), NumBuckets-1)
}

// bucketLo is the lower edge of bucket i in seconds; bucket 0 starts at 0
// so that the density is defined down to zero.
func bucketLo(i int) float64 {
	if i == 0 {
		return 0
	}
	return bucketBase.Seconds() * math.Exp2(float64(i)/bucketsPer)
}

// bucketHi is the upper edge of bucket i in seconds.
func bucketHi(i int) float64 { return bucketBase.Seconds() * math.Exp2(float64(i+1)/bucketsPer) }

// Observe records that an item stayed d in the state, first decaying what
// is already there.
func (h *Histogram) Observe(d time.Duration) {
	decay := math.Exp2(-1.0 / HalfLife)
	for i := range h.Counts {
		h.Counts[i] *= decay
	}
	b := bucketOf(d)
	for k, w := range kernel {
		// Weight that would fall outside the range is folded into the
		// edge bucket so every observation adds exactly 1.
		i := min(max(b+k-len(kernel)/2, 0), NumBuckets-1)
		h.Counts[i] += w
	}
	h.Total = h.Total*decay + 1
}

// Mean returns the estimated mean duration, or 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.Total <= 0 {
		return 0
	}
	var s float64
	for i, c := range h.Counts {
		s += c * (bucketLo(i) + bucketHi(i)) / 2
	}
	return time.Duration(s / h.Total * float64(time.Second))
}

// MarshalBinary encodes the histogram for the store (JSON, so a dump of
// the database stays readable).
func (h *Histogram) MarshalBinary() ([]byte, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode histogram: %w", err)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (h *Histogram) UnmarshalBinary(b []byte) error {
	var v Histogram
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("decode histogram: %w", err)
	}
	*h = v
	return nil
}

// segment is one bucket as the scheduler sees it: on [lo, hi) the density
// is f (per second, normalised) and the survival falls linearly from sLo.
type segment struct {
	lo, hi, f, sLo float64
}

// segments normalises the histogram into segments, empty buckets left out.
func (h *Histogram) segments() []segment {
	var segs []segment
	surv := 1.0
	for i, c := range h.Counts {
		if c <= 0 {
			continue
		}
		m := c / h.Total
		lo, hi := bucketLo(i), bucketHi(i)
		segs = append(segs, segment{lo: lo, hi: hi, f: m / (hi - lo), sLo: surv})
		surv = max(surv-m, 0)
	}
	return segs
}

// survAt is the survival of segment s at t in [lo, hi].
func (s segment) survAt(t float64) float64 {
	return max(s.sLo-s.f*(t-s.lo), 0)
}
