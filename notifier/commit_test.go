package notifier

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
)

func TestRetryDelay(t *testing.T) {
	const s = 10 * time.Second
	cases := []struct {
		name       string
		jitter     float64
		retryAfter time.Duration
		min, max   time.Duration
	}{
		{"no Retry-After: ±20% jitter", 0.2, 0, 8 * time.Second, 12 * time.Second},
		{"jitter 0: the exact delay", 0, 0, s, s},
		{"jitter 0.5", 0.5, 0, 5 * time.Second, 15 * time.Second},
		{"shorter Retry-After leaves the schedule", 0.2, time.Second, 8 * time.Second, 12 * time.Second},
		{"Retry-After within twice the schedule", 0.2, 15 * time.Second, 15 * time.Second, 15 * time.Second},
		{"Retry-After capped at twice the schedule", 0.2, time.Hour, 20 * time.Second, 20 * time.Second},
		{"Retry-After with no jitter", 0, 15 * time.Second, 15 * time.Second, 15 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lo, hi := time.Duration(1<<62), time.Duration(0)
			for range 2000 {
				d := RetryDelay(s, c.jitter, c.retryAfter)
				lo, hi = min(lo, d), max(hi, d)
			}
			if lo < c.min || hi > c.max {
				t.Errorf("delays in [%s, %s], want within [%s, %s]", lo, hi, c.min, c.max)
			}
			if c.min != c.max && hi-lo < (c.max-c.min)/2 {
				t.Errorf("delays in [%s, %s]: not jittered", lo, hi)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	t0 := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	fail := func(at time.Time, status int) result {
		return result{at: at, status: status, outcome: OutcomeHTTPError}
	}
	ok := result{at: t0.Add(time.Hour), status: 200, outcome: OutcomeSuccess}
	cases := []struct {
		name         string
		h            store.SubState
		r            result
		disableAfter time.Duration
		want         store.SubState
		reason       string
	}{
		{
			name: "first failure starts the run",
			r:    fail(t0, 500),
			want: store.SubState{FailureCount: 1, FirstFailureAt: t0, LastTriggeredAt: t0, LastResponseStatus: 500},
		},
		{
			name: "success resets the run",
			h:    store.SubState{FailureCount: 3, FirstFailureAt: t0},
			r:    ok,
			want: store.SubState{LastTriggeredAt: ok.at, LastResponseStatus: 200},
		},
		{
			name:   "410 disables at once",
			r:      fail(t0, 410),
			want:   store.SubState{FailureCount: 1, FirstFailureAt: t0, LastTriggeredAt: t0, LastResponseStatus: 410, Disabled: true, DisabledAt: t0, DisabledReason: ReasonGone},
			reason: ReasonGone,
		},
		{
			name:         "failing for less than disable_after",
			h:            store.SubState{FailureCount: 5, FirstFailureAt: t0},
			r:            fail(t0.Add(71*time.Hour), 503),
			disableAfter: 72 * time.Hour,
			want:         store.SubState{FailureCount: 6, FirstFailureAt: t0, LastTriggeredAt: t0.Add(71 * time.Hour), LastResponseStatus: 503},
		},
		{
			name:         "failing for disable_after",
			h:            store.SubState{FailureCount: 5, FirstFailureAt: t0},
			r:            fail(t0.Add(72*time.Hour), 0),
			disableAfter: 72 * time.Hour,
			want: store.SubState{FailureCount: 6, FirstFailureAt: t0, LastTriggeredAt: t0.Add(72 * time.Hour),
				Disabled: true, DisabledAt: t0.Add(72 * time.Hour), DisabledReason: "nothing but failures for 72h0m0s (disable_after)"},
			reason: "nothing but failures for 72h0m0s (disable_after)",
		},
		{
			name: "disable_after unset never disables",
			h:    store.SubState{FailureCount: 500, FirstFailureAt: t0},
			r:    fail(t0.Add(1000*time.Hour), 500),
			want: store.SubState{FailureCount: 501, FirstFailureAt: t0, LastTriggeredAt: t0.Add(1000 * time.Hour), LastResponseStatus: 500},
		},
		{
			name: "already disabled keeps its reason",
			h:    store.SubState{Disabled: true, DisabledAt: t0, DisabledReason: ReasonAPI},
			r:    fail(t0, 410),
			want: store.SubState{Disabled: true, DisabledAt: t0, DisabledReason: ReasonAPI, FailureCount: 1, FirstFailureAt: t0, LastTriggeredAt: t0, LastResponseStatus: 410},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, reason := observe(c.h, c.r, c.disableAfter)
			if got != c.want || reason != c.reason {
				t.Errorf("observe =\n%+v, %q\nwant\n%+v, %q", got, reason, c.want, c.reason)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := New(st, NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	n.SetSubscriptions([]*Subscription{{ID: "app", Schedule: []time.Duration{time.Minute, time.Hour}, MaxInFlight: 1}})
	now := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		sub    string
		round  int
		r      result
		state  string
		wait   time.Duration
		jitter bool
	}{
		{name: "success", sub: "app", round: 1, r: result{outcome: OutcomeSuccess}, state: store.Delivered},
		{name: "first failure waits schedule[0]", sub: "app", round: 1, r: result{outcome: OutcomeTimeout}, state: store.Retrying, wait: time.Minute, jitter: true},
		{name: "second failure waits schedule[1]", sub: "app", round: 2, r: result{outcome: OutcomeConnection}, state: store.Retrying, wait: time.Hour, jitter: true},
		{name: "after the last retry: dead", sub: "app", round: 3, r: result{outcome: OutcomeHTTPError}, state: store.Dead},
		{name: "permanent: dead at once", sub: "app", round: 1, r: result{outcome: OutcomePayload, permanent: true}, state: store.Dead},
		{name: "Retry-After", sub: "app", round: 1, r: result{outcome: OutcomeHTTPError, retryAfter: 90 * time.Second}, state: store.Retrying, wait: 90 * time.Second},
		{name: "removed subscription keeps retrying", sub: "gone", round: 1, r: result{outcome: OutcomeHTTPError}, state: store.Retrying, wait: 5 * time.Second, jitter: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &store.Delivery{Subscription: c.sub, Round: c.round, State: store.Pending, NextAt: now}
			n.decide(d, c.r, now)
			if d.State != c.state {
				t.Fatalf("state %s, want %s", d.State, c.state)
			}
			if c.state != store.Retrying {
				return
			}
			got := d.NextAt.Sub(now)
			if c.jitter && !within(got, c.wait) || !c.jitter && got != c.wait {
				t.Errorf("next attempt in %s, want %s (jitter %t)", got, c.wait, c.jitter)
			}
		})
	}
}
