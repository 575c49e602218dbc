package adaptive

import (
	"math"
	"sync"
	"time"
)

// MinObservations is how many (decayed) observations of a state the
// scheduler needs before it trusts the histogram; with fewer, or for a
// state never seen, it polls at the fixed interval.
const MinObservations = 20

// Params bound one scheduling decision.
type Params struct {
	// Min and Max clamp every interval returned. Max also applies where
	// the history predicts nothing (past every duration ever observed).
	Min, Max time.Duration
	// Fixed is the interval used while a state has too little history.
	Fixed time.Duration
	// Polls is the budget: the expected number of polls per stay in a
	// state. Zero means what Fixed would spend (mean stay / Fixed), so the
	// adaptive schedule costs what the fixed one would and detects sooner.
	Polls float64
	// Threshold, when above zero, replaces Polls: the √hazard (in √s)
	// accumulated between two polls. One threshold for every state of a
	// source is the optimum the derivation in NextPoll gives: it spends
	// more polls on states where they buy more delay, where a per-state
	// Polls spends them evenly.
	Threshold float64
}

// Model holds one duration histogram per state of one source. It is safe
// for concurrent use.
type Model struct {
	mu    sync.Mutex
	hists map[string]*Histogram
}

// NewModel returns an empty model.
func NewModel() *Model { return &Model{hists: map[string]*Histogram{}} }

// Observe records that an item stayed d in state.
func (m *Model) Observe(state string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.hists[state]
	if h == nil {
		h = &Histogram{}
		m.hists[state] = h
	}
	h.Observe(d)
}

// Histogram returns a copy of state's histogram, for persisting it.
func (m *Model) Histogram(state string) (Histogram, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.hists[state]
	if !ok {
		return Histogram{}, false
	}
	return *h, true
}

// Load replaces state's histogram, for restoring it from the store.
func (m *Model) Load(state string, h Histogram) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hists[state] = &h
}

// NextPoll returns how long after a poll at which the item was seen in
// state, age into it, to poll it again.
//
// Why polls go where they go: with poll density λ(t) over an item's stay,
// the expected detection delay is ∫ f(t)/(2λ(t)) dt and the expected
// number of polls ∫ S(t)λ(t) dt (f the density of the stay's length, S its
// survival). Minimising the first for a fixed value of the second gives
// λ ∝ √(f/S) = √hazard. So the next poll is where the √hazard accumulated
// since this one reaches K/Polls, K = ∫ √(f·S) dt being the total for a
// whole stay: sparse while a transition is unlikely, dense around its
// likely time, sparse again in a long tail.
func (m *Model) NextPoll(state string, age time.Duration, p Params) time.Duration {
	m.mu.Lock()
	h, ok := m.hists[state]
	var hc Histogram
	if ok {
		hc = *h
	}
	m.mu.Unlock()
	if !ok || hc.Total < MinObservations {
		return clamp(p.Fixed, p)
	}
	return clamp(hc.next(age, p), p)
}

// next is NextPoll on a histogram with enough history.
func (h *Histogram) next(age time.Duration, p Params) time.Duration {
	segs := h.segments()
	var k float64
	for _, s := range segs {
		k += 2 / (3 * math.Sqrt(s.f)) * (math.Pow(s.sLo, 1.5) - math.Pow(s.survAt(s.hi), 1.5))
	}
	need := p.Threshold
	if need <= 0 {
		polls := p.Polls
		if polls <= 0 && p.Fixed > 0 {
			polls = h.Mean().Seconds() / p.Fixed.Seconds()
		}
		if polls <= 0 || k <= 0 {
			return p.Fixed
		}
		// Fewer than one poll per stay cannot be spaced by hazard;
		// spend at least one.
		need = k / max(polls, 1)
	}
	a := age.Seconds()
	for _, s := range segs {
		if s.hi <= a {
			continue
		}
		t0 := max(a, s.lo)
		s0, s1 := s.survAt(t0), s.survAt(s.hi)
		// ∫ √(f/S) dt over the segment, S falling linearly at rate f.
		got := 2 / math.Sqrt(s.f) * (math.Sqrt(s0) - math.Sqrt(s1))
		if got < need {
			need -= got
			continue
		}
		root := math.Sqrt(s0) - need*math.Sqrt(s.f)/2
		t := s.lo + (s.sLo-root*root)/s.f
		return time.Duration((t - a) * float64(time.Second))
	}
	// Past every stay ever observed: nothing predicts when it ends.
	return p.Max
}

// clamp bounds d by p.Min and p.Max (either may be zero for none).
func clamp(d time.Duration, p Params) time.Duration {
	if p.Max > 0 {
		d = min(d, p.Max)
	}
	return max(d, p.Min)
}
