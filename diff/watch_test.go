package diff

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

func TestCompareWatch(t *testing.T) {
	terminal := []json.RawMessage{js("ready"), js("errored")}
	tests := []struct {
		name  string
		prev  *store.Item
		ob    Observation
		o     WatchOptions
		want  []string
		ok    bool
		ended bool
		rec   string
	}{
		{name: "first, never seen, non-terminal: silent", ob: ob("a", "queued"), o: WatchOptions{First: true},
			ok: true, rec: "queued"},
		{name: "first, never seen, terminal: fires and ends", ob: ob("a", "ready"), o: WatchOptions{First: true},
			want: []string{"changed a null→ready"}, ok: true, ended: true, rec: "ready"},
		{name: "first, known item, same state: nothing to write", prev: it("queued"), ob: ob("a", "queued"), o: WatchOptions{First: true}},
		{name: "first, known item, new non-terminal state: silent", prev: it("queued"), ob: ob("a", "processing"), o: WatchOptions{First: true},
			ok: true, rec: "processing"},
		{name: "first, known item already terminal: fires and ends", prev: it("ready"), ob: ob("a", "ready"), o: WatchOptions{First: true},
			want: []string{"changed a ready→ready"}, ok: true, ended: true, rec: "ready"},
		{name: "first, settle does not delay it", prev: it("queued"), ob: ob("a", "errored"), o: WatchOptions{First: true, Settle: 3},
			want: []string{"changed a queued→errored"}, ok: true, ended: true, rec: "errored"},
		{name: "later change", prev: it("queued"), ob: ob("a", "processing"),
			want: []string{"changed a queued→processing"}, ok: true, rec: "processing"},
		{name: "later terminal change ends", prev: it("processing"), ob: ob("a", "ready"),
			want: []string{"changed a processing→ready"}, ok: true, ended: true, rec: "ready"},
		{name: "later unchanged", prev: it("processing"), ob: ob("a", "processing")},
		{name: "later terminal change waits for settle", prev: it("processing"), ob: ob("a", "ready"), o: WatchOptions{Settle: 2},
			ok: true, rec: "processing (pending ready×1)"},
		{name: "later stalled", prev: it("queued"), ob: ob("a", "queued"), o: WatchOptions{Stalls: stallRule(t, "queued", time.Minute)},
			want: []string{"stalled a queued→queued rule 0"}, ok: true, rec: "queued (stalled [0])"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Terminal, o.Now = terminal, t0.Add(time.Hour)
			c, ok, ended := CompareWatch(tc.prev, tc.ob, o)
			var got []string
			for _, tr := range c.Transitions {
				got = append(got, summary(tr))
			}
			if !slices.Equal(got, tc.want) || ok != tc.ok || ended != tc.ended {
				t.Errorf("got %q ok=%v ended=%v, want %q ok=%v ended=%v", got, ok, ended, tc.want, tc.ok, tc.ended)
			}
			if ok && record(c.Item) != tc.rec {
				t.Errorf("record = %s, want %s", record(c.Item), tc.rec)
			}
		})
	}
}

const watchSrc = "  - {name: w, url: 'https://x.test/t/{id}', terminal: [ready], watch_ttl: 1h, ids: [a, b]}\n"

func (d *db) watch(id string) *store.Watch {
	d.t.Helper()
	var w *store.Watch
	if err := d.st.View(func(t store.Txn) error {
		var err error
		w, err = t.Watch("w", id)
		return err
	}); err != nil {
		d.t.Fatal(err)
	}
	return w
}

func (d *db) update(fn func(store.Txn) error) {
	d.t.Helper()
	if err := d.st.Update(fn); err != nil {
		d.t.Fatal(err)
	}
}

func TestApplyWatches(t *testing.T) {
	d := newDB(t)
	src := parseSource(t, watchSrc)
	ctx := context.Background()
	if added, removed, err := SyncConfigWatches(d.st, src, t0); err != nil || added != 2 || removed != 0 {
		t.Fatalf("sync: +%d -%d %v", added, removed, err)
	}
	d.update(func(t store.Txn) error {
		w, _ := t.Watch("w", "a")
		w.Metadata = json.RawMessage(`{"order":1}`)
		return t.PutWatch(w)
	})
	apply := func(now time.Time, obs ...WatchObservation) WatchResult {
		t.Helper()
		res, err := ApplyWatches(ctx, d.st, src, obs, now)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	val := Validators{ETag: `"1"`, For: "k"}
	res := apply(t0.Add(time.Minute),
		WatchObservation{ID: "a", Observation: ob("a", "queued"), Validators: val},
		WatchObservation{ID: "b", Observation: ob("b", "queued")},
		WatchObservation{ID: "gone", Observation: ob("gone", "ready")}) // not watched: ignored
	if res.NewItems != 2 || len(res.Events) != 0 {
		t.Fatalf("first observations: %+v", res)
	}
	if w := d.watch("a"); !w.ObservedAt.Equal(t0.Add(time.Minute)) || w.ETag != `"1"` || w.ValidatorsFor != "k" {
		t.Errorf("watch a after its first observation: %+v", w)
	}

	// a finishes: one event with its metadata, watch removed and marked.
	res = apply(t0.Add(2*time.Minute), WatchObservation{ID: "a", Observation: ob("a", "ready")},
		WatchObservation{ID: "b", NotModified: true})
	if res.Ended != 1 || len(res.Events) != 1 || string(res.Events[0].Watch.Metadata) != `{"order":1}` {
		t.Fatalf("terminal: %+v", res)
	}
	if d.watch("a") != nil {
		t.Error("watch a not removed with its terminal event")
	}
	// b expires, but was renewed meanwhile: nothing happens.
	d.update(func(t store.Txn) error {
		w, _ := t.Watch("w", "b")
		w.ExpiresAt = t0.Add(3 * time.Hour)
		return t.PutWatch(w)
	})
	if res := apply(t0.Add(2*time.Hour), WatchObservation{ID: "b", Expired: true}); res.Expired != 0 || len(res.Events) != 0 {
		t.Fatalf("renewed watch expired: %+v", res)
	}
	res = apply(t0.Add(3*time.Hour), WatchObservation{ID: "b", Expired: true})
	if res.Expired != 1 || len(res.Events) != 1 {
		t.Fatalf("expiry: %+v", res)
	}
	e := res.Events[0]
	if e.Type != "w.watch_expired" || e.Kind != event.WatchExpired || string(e.Previous) != `"queued"` || string(e.Watch.Metadata) != "{}" {
		t.Errorf("expiry event: %+v", e)
	}
	if d.watch("b") != nil {
		t.Error("expired watch not removed")
	}

	// Both ended: a restart's sync must not start them again.
	if added, _, err := SyncConfigWatches(d.st, src, t0.Add(4*time.Hour)); err != nil || added != 0 {
		t.Errorf("sync after the ends re-added %d (%v)", added, err)
	}
	if got := d.events(); !slices.Equal(got, []string{"w.changed:a", "w.watch_expired:b"}) {
		t.Errorf("events = %v", got)
	}
}

func TestSyncConfigWatchesRemovesDroppedIDs(t *testing.T) {
	d := newDB(t)
	if _, _, err := SyncConfigWatches(d.st, parseSource(t, watchSrc), t0); err != nil {
		t.Fatal(err)
	}
	// An API watch is not the config's to remove.
	d.update(func(t store.Txn) error {
		return t.PutWatch(&store.Watch{Source: "w", ID: "api", Origin: store.OriginAPI, CreatedAt: t0})
	})
	src := parseSource(t, "  - {name: w, url: 'https://x.test/t/{id}', terminal: [ready], ids: [b]}\n")
	added, removed, err := SyncConfigWatches(d.st, src, t0)
	if err != nil || added != 0 || removed != 1 {
		t.Fatalf("sync: +%d -%d %v", added, removed, err)
	}
	if d.watch("a") != nil || d.watch("b") == nil || d.watch("api") == nil {
		t.Error("wrong watches removed")
	}
	if w := d.watch("b"); !w.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("b keeps the expiry it was created with: %+v", w)
	}
}

func TestWatchListedAndApplyWatchFrom(t *testing.T) {
	d := newDB(t)
	list := parseSource(t, "  - {name: l, url: 'https://x.test/l', items: '.data[]'}\n")
	// Validation wants l in the same file; set it after parsing.
	ws := parseSource(t, "  - {name: w, url: 'https://x.test/t/{id}', terminal: [ready]}\n")
	ws.WatchFrom = "l"
	ctx := context.Background()
	// Items tracked before watch_from was configured…
	if _, err := Apply(ctx, d.st, list, Poll{Observations: []Observation{ob("a", "queued"), ob("b", "ready")}, Complete: true, Now: t0}); err != nil {
		t.Fatal(err)
	}
	// …are caught up with at start.
	if n, err := WatchListed(d.st, ws, t0); err != nil || n != 1 || d.watch("a") == nil {
		t.Fatalf("WatchListed added %d (%v)", n, err)
	}
	// Later changes are watched in the poll's own transaction.
	res, err := Apply(ctx, d.st, list, Poll{Observations: []Observation{ob("a", "queued"), ob("b", "processing"), ob("c", "ready")},
		Complete: true, Now: t0.Add(time.Minute), Watchers: []*Source{ws}})
	if err != nil {
		t.Fatal(err)
	}
	if res.WatchesAdded["w"] != 1 || d.watch("b") == nil || d.watch("c") != nil {
		t.Errorf("added %v; b watched %v, c (terminal) watched %v", res.WatchesAdded, d.watch("b") != nil, d.watch("c") != nil)
	}
	if w := d.watch("b"); w.Origin != store.OriginWatchFrom {
		t.Errorf("origin = %s", w.Origin)
	}
}

// TestWatchRuleOverALimitStoresNothing: a rule that runs over a jq limit
// on a watch's transition leaves that watch's item as it was, so the next
// round sees the transition again; the other watches are applied.
func TestWatchRuleOverALimitStoresNothing(t *testing.T) {
	d := newDB(t)
	src := parseSource(t, "  - {name: w, url: 'https://x.test/t/{id}', terminal: [ready], watch_ttl: 1h, ids: [a, b],\n"+
		"     events: [{type: w.changed, on: changed, when: 'if .id == \"a\" then (def f: [f]; f) else true end'}]}\n")
	ctx := context.Background()
	if _, _, err := SyncConfigWatches(d.st, src, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyWatches(ctx, d.st, src, []WatchObservation{{ID: "a", Observation: ob("a", "queued")}, {ID: "b", Observation: ob("b", "queued")}}, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	res, err := ApplyWatches(ctx, d.st, src, []WatchObservation{{ID: "a", Observation: ob("a", "running")}, {ID: "b", Observation: ob("b", "running")}}, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.RuleErrors) != 1 || !strings.Contains(res.RuleErrors[0].Error(), "nothing stored") || len(res.Events) != 1 || res.Events[0].ItemID != "b" {
		t.Fatalf("result %+v", res)
	}
	var a *store.Item
	d.update(func(t store.Txn) error {
		var err error
		a, err = t.Item("w", "a")
		return err
	})
	if string(a.State) != `"queued"` {
		t.Errorf("a's state is %s: stored without its event", a.State)
	}
}
