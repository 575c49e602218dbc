// Command adaptive replays a synthetic workload against a fixed polling
// interval and against the adaptive scheduler of poller/adaptive, with a
// simulated clock, and prints the detection delay each achieves for the
// same number of upstream requests (and the requests each needs for the
// same delay).
//
// Workload: jobs watched from creation, queued for a log-normal time
// (median 20s, σ 0.5), then processing for a log-normal time (median 90s,
// σ 1.0: a long tail), then done (terminal: the watch ends). Every job
// is polled at creation; a transition's detection delay is the time from
// it to the first poll after it.
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/pollrelay/pollrelay/poller/adaptive"
)

// Workload parameters.
const (
	jobs          = 10000
	seed          = 9
	queuedMedian  = 20.0 // seconds
	queuedSigma   = 0.5
	processMedian = 90.0 // seconds
	processSigma  = 1.0
	minInterval   = time.Second
	maxInterval   = 10 * time.Minute
)

// fixedInterval is the baseline, and adaptive's fallback while it learns.
var fixedInterval = 15 * time.Second

// job is one simulated job: when it leaves queued and when it is done.
type job struct{ started, done float64 }

// state is a job's state at t seconds after creation.
func (j job) state(t float64) string {
	switch {
	case t < j.started:
		return "queued"
	case t < j.done:
		return "processing"
	}
	return "done"
}

// result is what one run cost and achieved.
type result struct {
	requests int
	delays   []float64 // seconds, one per transition
}

func (r result) mean() float64 {
	var s float64
	for _, d := range r.delays {
		s += d
	}
	return s / float64(len(r.delays))
}

func (r result) p95() float64 {
	d := slices.Clone(r.delays)
	slices.Sort(d)
	return d[int(0.95*float64(len(d)-1))]
}

// scheduler returns the gap to the next poll of a job seen in state, age
// into it (estimated).
type scheduler func(state string, age float64) float64

// run polls every job with next until it is seen done. learn, when set, is
// told each stay the polls revealed (estimated, as the poller estimates it).
func run(js []job, next scheduler, learn func(state string, d float64)) result {
	var r result
	for _, j := range js {
		now, last := 0.0, 0.0
		state, entry := "queued", 0.0
		r.requests++
		for state != "done" {
			now += next(state, now-entry)
			r.requests++
			seen := j.state(now)
			if seen == state {
				last = now
				continue
			}
			// Each transition between the two polls is detected now.
			for _, tr := range []float64{j.started, j.done} {
				if tr > last && tr <= now {
					r.delays = append(r.delays, now-tr)
				}
			}
			// The change happened between the polls: midpoint is the
			// unbiased guess, for the stay that ended and the one begun.
			mid := (last + now) / 2
			if learn != nil {
				learn(state, mid-entry)
			}
			state, entry, last = seen, mid, now
		}
	}
	return r
}

func fixed(iv float64) scheduler { return func(string, float64) float64 { return iv } }

// runAdaptive runs the adaptive scheduler at the given threshold (its
// budget), learning from scratch as the poller would.
func runAdaptive(js []job, threshold float64) result {
	m := adaptive.NewModel()
	p := adaptive.Params{Min: minInterval, Max: maxInterval, Fixed: fixedInterval, Threshold: threshold}
	next := func(state string, age float64) float64 {
		return m.NextPoll(state, dur(age), p).Seconds()
	}
	return run(js, next, func(state string, d float64) { m.Observe(state, dur(d)) })
}

func dur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// bisect finds x in [lo, hi] where f(x) crosses target, f monotone.
func bisect(lo, hi, target float64, f func(float64) float64) float64 {
	up := f(hi) > f(lo)
	for range 30 {
		mid := (lo + hi) / 2
		if (f(mid) < target) == up {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

func main() {
	flag.DurationVar(&fixedInterval, "fixed", fixedInterval, "the fixed interval to compare with (sets the request budget)")
	flag.Parse()
	rng := rand.New(rand.NewPCG(seed, seed))
	js := make([]job, jobs)
	for i := range js {
		q := queuedMedian * math.Exp(queuedSigma*rng.NormFloat64())
		p := processMedian * math.Exp(processSigma*rng.NormFloat64())
		js[i] = job{started: q, done: q + p}
	}
	fmt.Printf("workload: %d jobs; queued log-normal median %.0fs σ %.1f; processing log-normal median %.0fs σ %.1f; done is terminal\n",
		jobs, queuedMedian, queuedSigma, processMedian, processSigma)
	fmt.Printf("adaptive: min_interval %s, max_interval %s, fallback %s until %d observations of a state\n",
		minInterval, maxInterval, fixedInterval, adaptive.MinObservations)

	fx := run(js, fixed(fixedInterval.Seconds()), nil)
	// The adaptive budget (threshold) that spends what fixed spends.
	threshold := bisect(0.01, 20, float64(fx.requests), func(c float64) float64 {
		return float64(runAdaptive(js, c).requests)
	})
	ad := runAdaptive(js, threshold)
	fmt.Printf("\nequal requests:\n")
	fmt.Printf("  fixed %-6s requests %7d  mean delay %6.2fs  p95 %6.2fs\n", fixedInterval, fx.requests, fx.mean(), fx.p95())
	fmt.Printf("  adaptive      requests %7d  mean delay %6.2fs  p95 %6.2fs  (threshold %.3f √s)\n", ad.requests, ad.mean(), ad.p95(), threshold)

	// The reverse: the fixed interval whose mean delay equals adaptive's.
	iv := bisect(0.05, fixedInterval.Seconds(), ad.mean(), func(iv float64) float64 {
		return run(js, fixed(iv), nil).mean()
	})
	fs := run(js, fixed(iv), nil)
	fmt.Printf("\nequal mean delay (%.2fs):\n", ad.mean())
	fmt.Printf("  fixed %-6s requests %7d  mean delay %6.2fs  p95 %6.2fs\n", fmt.Sprintf("%.2fs", iv), fs.requests, fs.mean(), fs.p95())
	fmt.Printf("  adaptive      requests %7d  mean delay %6.2fs  p95 %6.2fs\n", ad.requests, ad.mean(), ad.p95())
	fmt.Printf("adaptive/fixed requests ratio at equal mean delay: %.2f\n", float64(ad.requests)/float64(fs.requests))
	k1, e1 := lognormalK(queuedMedian, queuedSigma)
	k2, e2 := lognormalK(processMedian, processSigma)
	fmt.Printf("\nbest any schedule can do on this workload knowing only the duration distributions\n")
	fmt.Printf("(poll density ∝ √hazard, continuous limit): mean delay ratio %.2f (queued alone %.2f, processing alone %.2f)\n",
		(k1+k2)*(k1+k2)/(2*(e1+e2)), k1*k1/e1, k2*k2/e2)
	fmt.Printf("adaptive/fixed mean delay ratio: %.2f\n", ad.mean()/fx.mean())
}

// lognormalK returns K = ∫ √(f·S) dt and the mean E of a log-normal stay.
// With poll density ∝ √hazard the delay×polls product is K²/2, with a
// fixed interval E/2, so K²/E is the lowest delay ratio any schedule that
// knows only the distribution can reach at equal requests.
func lognormalK(median, sigma float64) (k, mean float64) {
	const dt = 0.01
	for t := dt / 2; t < median*math.Exp(8*sigma); t += dt {
		z := math.Log(t/median) / sigma
		f := math.Exp(-z*z/2) / (t * sigma * math.Sqrt(2*math.Pi))
		s := 0.5 * math.Erfc(z/math.Sqrt2)
		k += math.Sqrt(f*s) * dt
	}
	return k, median * math.Exp(sigma*sigma/2)
}
