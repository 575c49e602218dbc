package adaptive

import (
	"math"
	"time"
)

// Hint is what one response said of how far its item has come: a
// progress fraction, an estimated time left, or neither.
type Hint struct {
	// Progress is 0..1; HasProgress says it was reported.
	Progress    float64
	HasProgress bool
	// Left is the time the upstream expects the item still needs;
	// HasLeft says it was reported.
	Left    time.Duration
	HasLeft bool
}

// Progress is what a watch has reported of its progress in its current
// state, from which the time it reaches 1 is estimated. The zero value is
// empty; Reset starts a new state.
type Progress struct {
	pts []point
}

type point struct {
	at time.Duration // age into the state
	p  float64
}

// maxPoints bounds the reports a watch keeps: the latest matter most.
const maxPoints = 16

// fallBack is how far a report may fall below the last before the run
// of progress counts as restarted (a retried job), not as noise.
const fallBack = 0.3

// Reset forgets what was reported in the previous state.
func (g *Progress) Reset() { g.pts = g.pts[:0] }

// Observe records progress p (0..1) reported age into the state.
func (g *Progress) Observe(age time.Duration, p float64) {
	p = min(max(p, 0), 1)
	if n := len(g.pts); n > 0 && p < g.pts[n-1].p-fallBack {
		g.pts = g.pts[:0]
	}
	if len(g.pts) == maxPoints {
		// Keep the anchor: every estimate is measured from it.
		copy(g.pts[1:], g.pts[2:])
		g.pts = g.pts[:maxPoints-1]
	}
	g.pts = append(g.pts, point{age, p})
}

// End estimates the age at which progress reaches 1: each report after
// the first extrapolates the run from the first through it, and the
// estimates are averaged weighted by how far each report has come (a
// report later in the run says more, and after a stall it carries the
// stall). ok is false while no report has grown past the first.
func (g *Progress) End() (time.Duration, bool) {
	if len(g.pts) < 2 {
		return 0, false
	}
	a := g.pts[0]
	var sum, wsum float64
	for _, q := range g.pts[1:] {
		grown := q.p - a.p
		if grown < minGrowth || q.at <= a.at {
			continue
		}
		end := a.at.Seconds() + (q.at-a.at).Seconds()*(1-a.p)/grown
		w := grown * grown
		sum += w * end
		wsum += w
	}
	if wsum == 0 {
		return 0, false
	}
	return seconds(sum / wsum), true
}

// minGrowth is the least growth over the anchor a report needs to say
// anything: less is within the noise of a stall.
const minGrowth = 0.02

// Overshoot is how far past the estimated end the next poll aims, as a
// share of the estimate: just after it, so an estimate a little early
// costs little delay and one a little late one more poll.
const Overshoot = 0.03

// Next returns how long after a poll at age to poll again: just after the
// estimated end of the current run of progress, and ok. Past that
// estimate and not done, it polls again after a small share of the age.
// ok is false when progress predicts nothing: the duration model decides.
func (g *Progress) Next(age time.Duration, p Params) (time.Duration, bool) {
	end, ok := g.End()
	if !ok {
		return 0, false
	}
	at := end + time.Duration(Overshoot*float64(end))
	if at <= age {
		return clamp(age/20, p), true
	}
	return clamp(at-age, p), true
}

// NextFromLeft returns the next poll for an upstream that said how long
// its item still needs: just after that, by a small margin for the
// upstream's own rounding.
func NextFromLeft(left time.Duration, p Params) time.Duration {
	margin := max(left/50, p.Min/2)
	return clamp(left+margin, p)
}

func seconds(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	if s > float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s * float64(time.Second))
}
