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

// run polls every job with next until it is seen done, starting in the
// state it is created in. learn, when set, is told each stay the polls
// revealed (estimated, as the poller estimates it).
func run(js []job, next scheduler, learn func(state string, d float64)) result {
	var r result
	for _, j := range js {
		now, last := 0.0, 0.0
		state, entry := j.state(0), 0.0
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

// equalRequests returns the threshold at which the adaptive scheduler
// spends what fixed polling spent on js.
func equalRequests(js []job, fixedRequests int) float64 {
	return bisect(0.01, 20, float64(fixedRequests), func(c float64) float64 {
		return float64(runAdaptive(js, c).requests)
	})
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
	only := flag.String("only", "", "run one workload: two (queued then processing), stay (the one-stay rows) or progress")
	flag.Parse()
	rng := rand.New(rand.NewPCG(seed, seed))
	switch *only {
	case "progress":
		fmt.Printf("adaptive/fixed mean delay ratio: %.2f\n", progressWorkload(rng))
		return
	case "stay":
		for _, sigma := range []float64{0.3, 0.5, 1.0} {
			oneStage(rng, sigma)
		}
		return
	}
	twoStates(rng)
	if *only == "two" {
		return
	}
	fmt.Printf("\none log-normal stay (median %.0fs), fixed %s against the duration model at equal requests:\n", processMedian, fixedInterval)
	for _, sigma := range []float64{0.3, 0.5, 1.0} {
		oneStage(rng, sigma)
	}
	ratio := progressWorkload(rng)
	fmt.Printf("adaptive/fixed mean delay ratio: %.2f\n", ratio)
}

// twoStates prints fixed against the duration model on jobs that are
// queued, then processing, then done.
func twoStates(rng *rand.Rand) {
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
	threshold := equalRequests(js, fx.requests)
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
	fmt.Printf("two-state workload: adaptive/fixed mean delay ratio at equal requests: %.2f\n", ad.mean()/fx.mean())

}

// oneStage prints fixed against the duration model on jobs that go
// straight from processing to done after a log-normal stay, with the
// bound K²/E no schedule that knows only the distribution can beat.
func oneStage(rng *rand.Rand, sigma float64) {
	js := make([]job, jobs)
	for i := range js {
		js[i] = job{started: 0, done: processMedian * math.Exp(sigma*rng.NormFloat64())}
	}
	fx := run(js, fixed(fixedInterval.Seconds()), nil)
	ad := runAdaptive(js, equalRequests(js, fx.requests))
	k, e := lognormalK(processMedian, sigma)
	optReq, optFixed := fixedExpected(processMedian, sigma, fixedInterval.Seconds())
	// The optimum is taken at the requests fixed polling expects, not at
	// those of this sample, whose long tail may fall short of them.
	opt := discreteOptimum(processMedian, sigma, optReq) / optFixed
	fmt.Printf("  σ %.1f  fixed: %7d requests, mean %6.2fs, p95 %6.2fs   adaptive: %7d requests, mean %6.2fs, p95 %6.2fs   ratio %.2f, bound %.2f (continuous), %.2f (at these requests)\n",
		sigma, fx.requests, fx.mean(), fx.p95(), ad.requests, ad.mean(), ad.p95(), ad.mean()/fx.mean(), k*k/e, opt)
}

// fixedExpected returns the expected requests a log-normal stay costs
// at a fixed interval (the first at creation) and its expected delay.
func fixedExpected(median, sigma, iv float64) (requests, delay float64) {
	mean := median * math.Exp(sigma*sigma/2)
	cdf := func(t float64) float64 { return 0.5 * math.Erfc(-(math.Log(t/median)/sigma)/math.Sqrt2) }
	partial := func(t float64) float64 { return mean * 0.5 * math.Erfc(-(math.Log(t/median)/sigma-sigma)/math.Sqrt2) }
	requests = 1
	f0, g0 := 0.0, 0.0
	for t := iv; f0 < 1-1e-12; t += iv {
		f1, g1 := cdf(t), partial(t)
		requests += 1 - f0
		delay += t*(f1-f0) - (g1 - g0)
		f0, g0 = f1, g1
	}
	return requests, delay
}

// discreteOptimum is the least mean delay any schedule that knows the
// log-normal stay exactly can reach with perStay requests a stay on
// average (the first at creation): the continuous bound assumes polls as
// dense as wanted, which six or seven a stay are not. It is a dynamic
// programme over poll times on a geometric grid: from a poll at s that
// saw the stay still running, the next at u costs the delay of the stays
// ending in (s, u], ∫(u−t)f dt, and one request with probability S(s);
// a Lagrange price on requests is bisected until they match perStay.
func discreteOptimum(median, sigma, perStay float64) float64 {
	const n = 3000
	hi := median * math.Exp(6*sigma)
	grid := make([]float64, n+1) // grid[0] = 0, then geometric
	lo := median * math.Exp(-6*sigma)
	for i := 1; i <= n; i++ {
		grid[i] = lo * math.Pow(hi/lo, float64(i-1)/float64(n-1))
	}
	mean := median * math.Exp(sigma*sigma/2)
	cdf := func(t float64) float64 {
		if t <= 0 {
			return 0
		}
		return 0.5 * math.Erfc(-(math.Log(t/median)/sigma)/math.Sqrt2)
	}
	partial := func(t float64) float64 { // ∫₀ᵗ x f(x) dx
		if t <= 0 {
			return 0
		}
		return mean * 0.5 * math.Erfc(-(math.Log(t/median)/sigma-sigma)/math.Sqrt2)
	}
	F, G := make([]float64, n+1), make([]float64, n+1)
	for i, t := range grid {
		F[i], G[i] = cdf(t), partial(t)
	}
	solve := func(mu float64) (delay, requests float64) {
		// cost[i]: least delay + mu·requests from a poll at grid[i] that
		// saw the stay running; next[i] is where the next poll goes.
		cost, next := make([]float64, n+1), make([]int, n+1)
		cost[n], next[n] = 0, -1
		for i := n - 1; i >= 0; i-- {
			best, at := math.Inf(1), n
			for j := i + 1; j <= n; j++ {
				c := grid[j]*(F[j]-F[i]) - (G[j] - G[i]) + mu*(1-F[i]) + cost[j]
				if c < best {
					best, at = c, j
				}
			}
			cost[i], next[i] = best, at
		}
		requests = 1
		for i := 0; next[i] >= 0; i = next[i] {
			j := next[i]
			delay += grid[j]*(F[j]-F[i]) - (G[j] - G[i])
			requests += 1 - F[i]
		}
		return delay, requests
	}
	lowMu, highMu := 0.0, 1000.0
	var delay float64
	for range 40 {
		mid := (lowMu + highMu) / 2
		d, r := solve(mid)
		if r > perStay {
			lowMu = mid
		} else {
			highMu = mid
			delay = d
		}
	}
	return delay
}

// Progress workload: jobs that report progress, growing at a rate of
// their own (a log-normal duration, median 90s, σ 1.0), each report off
// by up to ±10%, and one job in five stalling for 10–60 s somewhere
// between 20% and 80%.
const (
	progressNoise = 0.1
	stallShare    = 0.2
)

// pjob is a job of the progress workload.
type pjob struct {
	work              float64 // seconds of progress from 0 to 1
	stallAt, stallFor float64 // progress where it stalls, and for how long
	noise             []float64
}

func (j pjob) done() float64 { return j.work + j.stallFor }

// progress is what the job reports at t (true progress with the noise of
// report n), below 1 until done.
func (j pjob) progress(t float64, n int) float64 {
	active := t
	if stallT := j.stallAt * j.work; t > stallT {
		active = max(stallT, t-j.stallFor)
	}
	p := active / j.work * (1 + j.noise[n%len(j.noise)])
	return min(max(p, 0), 0.99)
}

// runProgress polls each job until it is done: at the progress model's
// time when it predicts one, else at the duration model's (learned, and
// spending what fixed would), as the poller does.
func runProgress(js []pjob) result {
	m := adaptive.NewModel()
	p := adaptive.Params{Min: minInterval, Max: maxInterval, Fixed: fixedInterval}
	var r result
	for i, j := range js {
		if i%100 == 0 {
			p.Threshold = m.ThresholdFor(fixedInterval)
		}
		var g adaptive.Progress
		now, last := 0.0, 0.0
		r.requests++
		g.Observe(0, j.progress(0, 0))
		for n := 1; ; n++ {
			gap, ok := g.Next(dur(now), p)
			if !ok {
				gap = m.NextPoll("processing", dur(now), p)
			}
			now += gap.Seconds()
			r.requests++
			if now >= j.done() {
				r.delays = append(r.delays, now-j.done())
				m.Observe("processing", dur((last+now)/2))
				break
			}
			g.Observe(dur(now), j.progress(now, n))
			last = now
		}
	}
	return r
}

// progressWorkload prints adaptive with progress against the fixed
// interval that spends the same requests, and returns the delay ratio.
func progressWorkload(rng *rand.Rand) float64 {
	js := make([]pjob, jobs)
	for i := range js {
		j := pjob{work: processMedian * math.Exp(processSigma*rng.NormFloat64()), noise: make([]float64, 16)}
		for k := range j.noise {
			j.noise[k] = progressNoise * (2*rng.Float64() - 1)
		}
		if rng.Float64() < stallShare {
			j.stallAt, j.stallFor = 0.2+0.6*rng.Float64(), 10+50*rng.Float64()
		}
		js[i] = j
	}
	ad := runProgress(js)
	asJobs := make([]job, len(js))
	for i, j := range js {
		asJobs[i] = job{started: 0, done: j.done()}
	}
	// The fixed interval that spends what adaptive spent.
	iv := bisect(0.5, 600, float64(ad.requests), func(iv float64) float64 {
		return float64(run(asJobs, fixed(iv), nil).requests)
	})
	fx := run(asJobs, fixed(iv), nil)
	fmt.Printf("\nprogress workload: %d jobs reporting progress (duration log-normal median %.0fs σ %.1f, each report ±%.0f%%, %.0f%% stall 10–60 s)\n",
		jobs, processMedian, processSigma, 100*progressNoise, 100*stallShare)
	fmt.Printf("equal requests:\n")
	fmt.Printf("  fixed %-7s requests %7d  mean delay %6.2fs  p95 %6.2fs\n", fmt.Sprintf("%.1fs", iv), fx.requests, fx.mean(), fx.p95())
	fmt.Printf("  adaptive      requests %7d  mean delay %6.2fs  p95 %6.2fs  (progress, falling back to the duration model)\n", ad.requests, ad.mean(), ad.p95())
	return ad.mean() / fx.mean()
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
