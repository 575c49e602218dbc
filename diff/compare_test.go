package diff

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

var t0 = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)

func js(s string) json.RawMessage { return json.RawMessage(fmt.Sprintf("%q", s)) }

// ob is an observation of id in state, with an object that names both.
func ob(id, state string) Observation {
	return Observation{ID: id, State: js(state), Object: json.RawMessage(fmt.Sprintf(`{"id":%q,"status":%q}`, id, state))}
}

// it is a stored item in state since t0.
func it(state string) *store.Item {
	return &store.Item{State: js(state), Object: json.RawMessage(`{}`), Since: t0,
		History: []store.HistoryEntry{{State: js(state), At: t0}}}
}

func with(i *store.Item, f func(*store.Item)) *store.Item {
	f(i)
	return i
}

// summary renders a transition compactly: "changed a queued→ready".
func summary(t Transition) string {
	s := fmt.Sprintf("%s %s %s→%s", t.Kind, t.ID, event.Text(t.Previous), event.Text(t.Current))
	if t.Kind == event.Stalled {
		s += fmt.Sprintf(" rule %d", t.Rule)
	}
	return s
}

// record renders a stored record: "state" or "state (pending p×n)".
func record(i *store.Item) string {
	if i == nil {
		return "forgotten"
	}
	s := event.Text(i.State)
	if i.Pending != nil {
		s += fmt.Sprintf(" (pending %s×%d)", event.Text(i.Pending), i.PendingCount)
	}
	if len(i.Stalled) > 0 {
		s += fmt.Sprintf(" (stalled %v)", i.Stalled)
	}
	return s
}

func stallRule(t *testing.T, state string, after time.Duration) map[int]*Rule {
	r, err := compileRule(&config.Rule{Type: "job.stuck", On: config.Kinds{event.Stalled}, State: state, After: after})
	if err != nil {
		t.Fatal(err)
	}
	return map[int]*Rule{0: &r}
}

func TestCompare(t *testing.T) {
	steady := Options{Complete: true, Deletes: true, Now: t0.Add(time.Hour)}
	opt := func(f func(*Options)) Options {
		o := steady
		f(&o)
		return o
	}
	tests := []struct {
		name  string
		prev  map[string]*store.Item
		obs   []Observation
		o     Options
		want  []string          // transitions
		write map[string]string // records written (absent ids: untouched)
	}{
		{
			name:  "baseline records silently",
			obs:   []Observation{ob("a", "queued"), ob("b", "ready")},
			o:     opt(func(o *Options) { o.Baseline = true }),
			write: map[string]string{"a": "queued", "b": "ready"},
		},
		{
			name:  "baseline with emit_existing",
			obs:   []Observation{ob("a", "queued")},
			o:     opt(func(o *Options) { o.Baseline, o.EmitExisting = true, true }),
			want:  []string{"created a null→queued"},
			write: map[string]string{"a": "queued"},
		},
		{
			name: "baseline forgets silently what an unfinished baseline left",
			prev: map[string]*store.Item{"z": it("queued"), "y": it("queued")},
			obs:  []Observation{ob("a", "queued"), ob("y", "ready")},
			o:    opt(func(o *Options) { o.Baseline = true }),
			// z and y were written by a baseline that did not finish: z is
			// gone upstream and y moved on since, and neither was ever
			// announced, so neither gets an event.
			write: map[string]string{"a": "queued", "y": "ready", "z": "forgotten"},
		},
		{
			name:  "incomplete baseline forgets nothing",
			prev:  map[string]*store.Item{"z": it("queued")},
			obs:   []Observation{ob("a", "queued")},
			o:     opt(func(o *Options) { o.Baseline, o.Complete = true, false }),
			write: map[string]string{"a": "queued"},
		},
		{
			name:  "created",
			prev:  map[string]*store.Item{"a": it("queued")},
			obs:   []Observation{ob("a", "queued"), ob("b", "queued")},
			o:     steady,
			want:  []string{"created b null→queued"},
			write: map[string]string{"b": "queued"},
		},
		{
			name:  "changed",
			prev:  map[string]*store.Item{"a": it("queued")},
			obs:   []Observation{ob("a", "ready")},
			o:     steady,
			want:  []string{"changed a queued→ready"},
			write: map[string]string{"a": "ready"},
		},
		{
			name: "non-string states compare as canonical JSON",
			prev: map[string]*store.Item{"a": {State: json.RawMessage(`{"done":false,"pct":10}`), Since: t0}},
			obs: []Observation{{ID: "a", State: json.RawMessage(`{"done":false,"pct":10}`)},
				{ID: "b", State: json.RawMessage(`3`)}},
			o:     steady,
			want:  []string{"created b null→3"},
			write: map[string]string{"b": "3"},
		},
		{
			name:  "deleted from a complete listing, in id order",
			prev:  map[string]*store.Item{"c": it("queued"), "a": it("ready"), "b": it("queued")},
			obs:   nil,
			o:     steady,
			want:  []string{"deleted a ready→null", "deleted b queued→null", "deleted c queued→null"},
			write: map[string]string{"a": "forgotten", "b": "forgotten", "c": "forgotten"},
		},
		{
			name: "incomplete listing deletes nothing",
			prev: map[string]*store.Item{"a": it("queued"), "b": it("queued")},
			obs:  []Observation{ob("a", "ready")},
			o:    opt(func(o *Options) { o.Complete = false }),
			want: []string{"changed a queued→ready"}, write: map[string]string{"a": "ready"},
		},
		{
			name: "deletes: false",
			prev: map[string]*store.Item{"a": it("queued")},
			o:    opt(func(o *Options) { o.Deletes = false }),
		},
		{
			name:  "duplicate ids: the first occurrence wins",
			prev:  map[string]*store.Item{"a": it("queued")},
			obs:   []Observation{ob("a", "queued"), ob("a", "ready"), ob("b", "x"), ob("b", "y")},
			o:     steady,
			want:  []string{"created b null→x"},
			write: map[string]string{"b": "x"},
		},
		{
			name: "object-only change emits and writes nothing",
			prev: map[string]*store.Item{"a": it("queued")},
			obs:  []Observation{{ID: "a", State: js("queued"), Object: json.RawMessage(`{"progress":50}`)}},
			o:    steady,
		},
		{
			name:  "settle: a new state waits",
			prev:  map[string]*store.Item{"a": it("queued")},
			obs:   []Observation{ob("a", "ready")},
			o:     opt(func(o *Options) { o.Settle = 2 }),
			write: map[string]string{"a": "queued (pending ready×1)"},
		},
		{
			name:  "settle: seen again, it fires",
			prev:  map[string]*store.Item{"a": with(it("queued"), func(i *store.Item) { i.Pending, i.PendingCount = js("ready"), 1 })},
			obs:   []Observation{ob("a", "ready")},
			o:     opt(func(o *Options) { o.Settle = 2 }),
			want:  []string{"changed a queued→ready"},
			write: map[string]string{"a": "ready"},
		},
		{
			name:  "settle: a one-poll flicker fires nothing",
			prev:  map[string]*store.Item{"a": with(it("queued"), func(i *store.Item) { i.Pending, i.PendingCount = js("ready"), 1 })},
			obs:   []Observation{ob("a", "queued")},
			o:     opt(func(o *Options) { o.Settle = 2 }),
			write: map[string]string{"a": "queued"},
		},
		{
			name:  "settle: another new state starts counting again",
			prev:  map[string]*store.Item{"a": with(it("queued"), func(i *store.Item) { i.Pending, i.PendingCount = js("ready"), 1 })},
			obs:   []Observation{ob("a", "errored")},
			o:     opt(func(o *Options) { o.Settle = 2 }),
			write: map[string]string{"a": "queued (pending errored×1)"},
		},
		{
			name:  "stalled: fires after the stay is long enough",
			prev:  map[string]*store.Item{"a": it("queued")},
			obs:   []Observation{ob("a", "queued")},
			o:     opt(func(o *Options) { o.Stalls = stallRule(t, "queued", 10*time.Minute) }),
			want:  []string{"stalled a queued→queued rule 0"},
			write: map[string]string{"a": "queued (stalled [0])"},
		},
		{
			name: "stalled: once per stay",
			prev: map[string]*store.Item{"a": with(it("queued"), func(i *store.Item) { i.Stalled = []int{0} })},
			obs:  []Observation{ob("a", "queued")},
			o:    opt(func(o *Options) { o.Stalls = stallRule(t, "queued", 10*time.Minute) }),
		},
		{
			name: "stalled: not yet",
			prev: map[string]*store.Item{"a": it("queued")},
			obs:  []Observation{ob("a", "queued")},
			o:    opt(func(o *Options) { o.Stalls = stallRule(t, "queued", 2*time.Hour) }),
		},
		{
			name: "stalled: other states don't stall",
			prev: map[string]*store.Item{"a": it("ready")},
			obs:  []Observation{ob("a", "ready")},
			o:    opt(func(o *Options) { o.Stalls = stallRule(t, "queued", time.Minute) }),
		},
		{
			name:  "stalled: a change starts a new stay",
			prev:  map[string]*store.Item{"a": with(it("queued"), func(i *store.Item) { i.Stalled = []int{0} })},
			obs:   []Observation{ob("a", "processing")},
			o:     opt(func(o *Options) { o.Stalls = stallRule(t, "queued", time.Minute) }),
			want:  []string{"changed a queued→processing"},
			write: map[string]string{"a": "processing"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prev := map[string]*store.Item{}
			maps.Copy(prev, tc.prev)
			changes := Compare(prev, tc.obs, tc.o)
			var got []string
			written := map[string]string{}
			for _, c := range changes {
				written[c.ID] = record(c.Item)
				for _, tr := range c.Transitions {
					got = append(got, summary(tr))
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("transitions:\n got %q\nwant %q", got, tc.want)
			}
			if tc.write == nil {
				tc.write = map[string]string{}
			}
			if !maps.Equal(written, tc.write) {
				t.Errorf("records written:\n got %v\nwant %v", written, tc.write)
			}
			if len(prev) != len(tc.prev) {
				t.Error("Compare modified prev")
			}
		})
	}
}

// TestCompareHistory: an item keeps its last HistoryLen states, and a
// change records when it entered the new state.
func TestCompareHistory(t *testing.T) {
	prev := map[string]*store.Item{"a": it("s0")}
	for i := 1; i <= store.HistoryLen+3; i++ {
		now := t0.Add(time.Duration(i) * time.Minute)
		cs := Compare(prev, []Observation{ob("a", fmt.Sprint("s", i))}, Options{Complete: true, Now: now})
		prev["a"] = cs[0].Item
		if !cs[0].Item.Since.Equal(now) {
			t.Fatalf("since = %v", cs[0].Item.Since)
		}
	}
	h := prev["a"].History
	if len(h) != store.HistoryLen || event.Text(h[len(h)-1].State) != fmt.Sprint("s", store.HistoryLen+3) {
		var states []string
		for _, e := range h {
			states = append(states, event.Text(e.State))
		}
		t.Errorf("history = %s", strings.Join(states, ","))
	}
}
