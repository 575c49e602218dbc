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

// MaxStates caps the histograms a model keeps. A state is any JSON value,
// so a state expression that yields, say, a progress percentage or a
// timestamp would otherwise grow the model (and the store) without bound;
// states past the cap are polled at the fixed interval.
const MaxStates = 256

// Params bound one scheduling decision.
type Params struct {
	// Min and Max clamp every interval returned. Max also applies where
	// the history predicts nothing (past every duration ever observed).
	Min, Max time.Duration
	// Fixed is the interval used while a state has too little history.
	Fixed time.Duration
	// Threshold is the budget: the √hazard (in √s) accumulated between
	// two polls; a higher one means fewer polls. One threshold for every
	// state of a source is the optimum the derivation in NextPoll gives
	// (it spends polls on the states where they buy the most delay);
	// Model.ThresholdFor picks the one that costs what Fixed would. Zero
	// means each state on its own spends what Fixed would.
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
		if len(m.hists) >= MaxStates {
			return
		}
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
	k := h.k()
	need := p.Threshold
	if need <= 0 {
		if p.Fixed <= 0 || k <= 0 {
			return p.Fixed
		}
		// K/threshold polls per stay, the mean stay/Fixed that the fixed
		// interval spends; at least one.
		need = k / max(h.Mean().Seconds()/p.Fixed.Seconds(), 1)
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

// k is K = ∫ √(f·S) dt over the histogram: with a threshold c between
// polls, a stay costs K/c polls on average.
func (h *Histogram) k() float64 {
	var k float64
	for _, s := range h.segments() {
		// S falls linearly at rate f, so ∫ √(f·S) dt has a closed form.
		k += 2 / (3 * math.Sqrt(s.f)) * (math.Pow(s.sLo, 1.5) - math.Pow(s.survAt(s.hi), 1.5))
	}
	return k
}

// ThresholdFor returns the Params.Threshold at which the adaptive schedule
// costs what polling every fixed would, over the states with enough
// history weighted by how often each is observed: fixed spends E/fixed
// polls on a stay of mean E, the threshold c spends K/c. It returns 0 when
// no state has enough history yet.
func (m *Model) ThresholdFor(fixed time.Duration) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var sumK, sumE float64
	for _, h := range m.hists {
		if h.Total < MinObservations {
			continue
		}
		sumK += h.Total * h.k()
		sumE += h.Total * h.Mean().Seconds()
	}
	if sumE <= 0 || fixed <= 0 {
		return 0
	}
	return fixed.Seconds() * sumK / sumE
}

// clamp bounds d by p.Min and p.Max (either may be zero for none).
func clamp(d time.Duration, p Params) time.Duration {
	if p.Max > 0 {
		d = min(d, p.Max)
	}
	return max(d, p.Min)
}
