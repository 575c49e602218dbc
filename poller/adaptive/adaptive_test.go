package adaptive

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// trained returns a model that has seen n stays in "processing", with
// log-normal durations of the given median and σ.
func trained(n int, median time.Duration, sigma float64) *Model {
	m := NewModel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range n {
		m.Observe("processing", time.Duration(float64(median)*math.Exp(sigma*rng.NormFloat64())))
	}
	return m
}

func TestNextPoll(t *testing.T) {
	base := Params{Min: time.Second, Max: 10 * time.Minute, Fixed: 15 * time.Second, Threshold: 0.5}
	lognormal := trained(2000, 90*time.Second, 0.5)
	few := trained(MinObservations-1, 90*time.Second, 0.5)
	for _, tc := range []struct {
		name   string
		model  *Model
		state  string
		age    time.Duration
		params func(Params) Params
		lo, hi time.Duration // the result must lie in [lo, hi]
	}{
		{name: "unseen state polls at the fixed interval", model: lognormal, state: "queued",
			lo: 15 * time.Second, hi: 15 * time.Second},
		{name: "too little history polls at the fixed interval", model: few, state: "processing",
			lo: 15 * time.Second, hi: 15 * time.Second},
		{name: "fixed fallback is clamped to min", model: few, state: "processing",
			params: func(p Params) Params { p.Fixed = 100 * time.Millisecond; return p },
			lo:     time.Second, hi: time.Second},
		{name: "sparse while a transition is unlikely", model: lognormal, state: "processing",
			lo: 20 * time.Second, hi: 60 * time.Second},
		{name: "dense around the median", model: lognormal, state: "processing", age: 90 * time.Second,
			lo: time.Second, hi: 15 * time.Second},
		{name: "past every observed stay polls at max", model: lognormal, state: "processing", age: 24 * time.Hour,
			lo: 10 * time.Minute, hi: 10 * time.Minute},
		{name: "never below min", model: lognormal, state: "processing", age: 90 * time.Second,
			params: func(p Params) Params { p.Threshold = 1e-6; return p },
			lo:     time.Second, hi: time.Second},
		{name: "never above max", model: lognormal, state: "processing",
			params: func(p Params) Params { p.Threshold = 100; p.Max = time.Minute; return p },
			lo:     time.Minute, hi: time.Minute},
		{name: "no threshold spends what fixed would", model: lognormal, state: "processing",
			params: func(p Params) Params { p.Threshold = 0; return p },
			lo:     20 * time.Second, hi: 90 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			if tc.params != nil {
				p = tc.params(p)
			}
			got := tc.model.NextPoll(tc.state, tc.age, p)
			if got < tc.lo || got > tc.hi {
				t.Errorf("NextPoll(%q, %v) = %v, want in [%v, %v]", tc.state, tc.age, got, tc.lo, tc.hi)
			}
		})
	}
}

// TestNextPollSpendsBudget checks the schedule against its derivation:
// polling a stay with threshold c costs about K/c polls, and
// ThresholdFor(fixed) therefore costs what the fixed interval would.
func TestNextPollSpendsBudget(t *testing.T) {
	const median, sigma = 90 * time.Second, 0.5
	m := trained(5000, median, sigma)
	fixed := 10 * time.Second
	c := m.ThresholdFor(fixed)
	if c <= 0 {
		t.Fatalf("ThresholdFor = %v, want > 0", c)
	}
	p := Params{Min: 100 * time.Millisecond, Max: time.Hour, Fixed: fixed, Threshold: c}
	rng := rand.New(rand.NewPCG(3, 4))
	var polls, fixedPolls float64
	const stays = 2000
	for range stays {
		d := time.Duration(float64(median) * math.Exp(sigma*rng.NormFloat64()))
		var at time.Duration
		for at < d {
			at += m.NextPoll("processing", at, p)
			polls++
		}
		fixedPolls += math.Ceil(float64(d) / float64(fixed))
	}
	if r := polls / fixedPolls; r < 0.8 || r > 1.25 {
		t.Errorf("adaptive polls / fixed polls = %.2f (%v / %v), want about 1", r, polls, fixedPolls)
	}
}

func TestThresholdForWithoutHistory(t *testing.T) {
	if c := trained(MinObservations-1, time.Minute, 1).ThresholdFor(time.Second); c != 0 {
		t.Errorf("ThresholdFor = %v with too little history, want 0", c)
	}
}

func TestHistogram(t *testing.T) {
	var h Histogram
	for range 100 {
		h.Observe(time.Minute)
	}
	if h.Total < 95 || h.Total > 100 {
		t.Errorf("Total = %v after 100 observations, want just under 100 (decayed)", h.Total)
	}
	if m := h.Mean(); m < 50*time.Second || m > 75*time.Second {
		t.Errorf("Mean = %v, want about 1m", m)
	}
	for range 5 * HalfLife {
		h.Observe(time.Hour)
	}
	if m := h.Mean(); m < 50*time.Minute {
		t.Errorf("Mean = %v after drifting to 1h stays, want about 1h", m)
	}
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Histogram
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if back != h {
		t.Error("histogram changed in a MarshalBinary round trip")
	}
	if err := back.UnmarshalBinary([]byte("{")); err == nil {
		t.Error("UnmarshalBinary accepted bad input")
	}
}

func TestBucketOf(t *testing.T) {
	for d, want := range map[time.Duration]int{
		0: 0, 50 * time.Millisecond: 0, 200 * time.Millisecond: 4, 400 * time.Millisecond: 8,
		time.Duration(math.MaxInt64): NumBuckets - 1,
	} {
		if got := bucketOf(d); got != want {
			t.Errorf("bucketOf(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestMaxStates(t *testing.T) {
	m := NewModel()
	for i := range MaxStates + 10 {
		m.Observe(string(rune('a'+i%26))+string(rune('a'+i/26)), time.Second)
	}
	if n := len(m.hists); n != MaxStates {
		t.Errorf("model keeps %d states, want at most %d", n, MaxStates)
	}
}

// Progress extrapolates the run from its first report, weighting later
// reports more; a stall only delays the estimate, and a fall back of more
// than fallBack restarts it. With too little growth it predicts nothing.
func TestProgressEstimatesTheEnd(t *testing.T) {
	p := Params{Min: time.Second, Max: 10 * time.Minute}
	var g Progress
	g.Observe(0, 0)
	if _, ok := g.Next(0, p); ok {
		t.Error("one report predicted an end")
	}
	g.Observe(10*time.Second, 0.01)
	if _, ok := g.Next(10*time.Second, p); ok {
		t.Error("1% of growth predicted an end")
	}
	g.Observe(20*time.Second, 0.2)
	g.Observe(40*time.Second, 0.4)
	if end, ok := g.End(); !ok || end < 98*time.Second || end > 102*time.Second {
		t.Errorf("end = %v, want about 100s", end)
	}
	if gap, _ := g.Next(40*time.Second, p); gap < 60*time.Second || gap > 65*time.Second {
		t.Errorf("next poll after %v, want just past the end at 100s", gap)
	}
	// Past the estimate and not done: soon again, not at once.
	if gap, _ := g.Next(120*time.Second, p); gap != 6*time.Second {
		t.Errorf("past the end, next poll after %v, want 6s (a twentieth of the age)", gap)
	}
	g.Observe(50*time.Second, 0.05) // restarted
	if _, ok := g.Next(50*time.Second, p); ok {
		t.Error("a restarted run predicted from the old one")
	}
	if d := NextFromLeft(30*time.Second, p); d != 30*time.Second+600*time.Millisecond {
		t.Errorf("30s left: next poll after %v", d)
	}
}
