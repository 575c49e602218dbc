package diff

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// streamSource settles, deletes and has a stalled rule, so every part of
// what the index keeps (state, pending, when a stall fires) matters.
const streamSource = `  - name: s
    url: https://x.test/s
    items: '.data[]'
    settle: %d
    max_delete_ratio: 1
    events:
      - {type: job.stuck, on: stalled, state: queued, after: 3m}
      - {type: 'job.{current}', on: changed}
      - {type: job.gone, on: deleted}
`

// TestFilteredPagesMatchCompare runs random sequences of polls, with ids
// repeated, missing, new and changing, and 304 answers, into two stores:
// one Apply is given each listing whole, the other has it filtered page
// by page through the index as the poller does with a long listing (a
// baseline's new items stored page by page), and a third also has what
// the filtered pages change written ahead in batches. Before every poll,
// the pure Compare over all stored records says what must happen; each
// must report exactly those transitions and store exactly its records,
// and the third exactly the whole listing's events.
func TestFilteredPagesMatchCompare(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			src := parseSource(t, fmt.Sprintf(streamSource, 1+seed%2))
			whole, paged, ahead := newDB(t), newDB(t), newDB(t)
			states := []string{"queued", "processing", "ready"}
			now := t0
			for poll := range 8 {
				now = now.Add(time.Duration(1+rng.IntN(3)) * time.Minute)
				var obs []Observation
				for i := range 60 {
					if rng.IntN(5) == 0 {
						continue // absent this time
					}
					obs = append(obs, ob(fmt.Sprintf("i%03d", i), states[rng.IntN(len(states))]))
					if rng.IntN(12) == 0 {
						obs = append(obs, ob(fmt.Sprintf("i%03d", i), states[rng.IntN(len(states))]))
					}
				}
				rng.Shuffle(len(obs), func(i, j int) { obs[i], obs[j] = obs[j], obs[i] })
				complete := rng.IntN(4) != 0

				// A 304 re-observes what is stored: stalled rules fire and
				// flickers end.
				replay := poll > 0 && rng.IntN(4) == 0
				if replay {
					obs, complete = storedObservations(t, whole), true
				}
				want, wantItems := reference(t, whole, src.Settle, complete, obs, now)
				got := mustApply(t, whole, fmt.Sprintf(streamSource, 1+seed%2), Poll{Observations: slices.Clone(obs), Complete: complete, Now: now, Replay: replay})

				x := LoadIndex(paged.st, src, 0)
				var kept []Observation
				for page := range slices.Chunk(obs, 1+rng.IntN(20)) {
					if replay {
						break
					}
					k, err := x.Filter(page, now)
					if err == nil {
						k, err = x.StoreNew(context.Background(), paged.st, k, now, nil)
					}
					if err != nil {
						t.Fatal(err)
					}
					kept = append(kept, k...)
				}
				streamed, err := Apply(context.Background(), paged.st, src, Poll{Observations: kept, Complete: complete, Now: now, Index: x, Replay: replay})
				if err != nil {
					t.Fatal(err)
				}
				if g := transitions(got.Transitions); !slices.Equal(g, want) {
					t.Fatalf("poll %d, whole listing:\n got %v\nwant %v", poll, g, want)
				}
				if g := transitions(streamed.Transitions); !slices.Equal(g, want) {
					t.Fatalf("poll %d, filtered pages:\n got %v\nwant %v", poll, g, want)
				}
				if got.Tracked != streamed.Tracked || got.Changes != streamed.Changes {
					t.Fatalf("poll %d: tracked %d/%d, changes %d/%d", poll, got.Tracked, streamed.Tracked, got.Changes, streamed.Changes)
				}
				early := applyAhead(t, ahead, src, obs, complete, now, replay, rng)
				if g, w := aheadKinds(early.Transitions), aheadKinds(got.Transitions); !slices.Equal(g, w) {
					t.Fatalf("poll %d, written ahead:\n got %v\nwant %v", poll, g, w)
				}
				if got.Tracked != early.Tracked || got.Changes != early.Changes || len(got.Events) != len(early.Events) {
					t.Fatalf("poll %d: written ahead, tracked %d/%d, changes %d/%d, events %d/%d", poll, got.Tracked, early.Tracked, got.Changes, early.Changes, len(got.Events), len(early.Events))
				}
				if g, w := ahead.eventRecords(), whole.eventRecords(); !slices.Equal(g, w) {
					t.Fatalf("poll %d: events written ahead\n got %v\nwant %v", poll, g, w)
				}
				for _, d := range []*db{whole, paged, ahead} {
					if got := dump(t, d); !slices.Equal(got, wantItems) {
						t.Fatalf("poll %d: stored items\n got %v\nwant %v", poll, got, wantItems)
					}
				}
			}
		})
	}
}

// applyAhead polls d as the poller does a long listing in which many
// items change: pages filtered through the index, a baseline's new items
// stored and what the rest change written ahead in batches of random
// size, then Apply for what is left.
func applyAhead(t *testing.T, d *db, src *Source, obs []Observation, complete bool, now time.Time, replay bool, rng *rand.Rand) Result {
	t.Helper()
	ctx := context.Background()
	x := LoadIndex(d.st, src, 0)
	var kept []Observation
	batch := 1 + rng.IntN(10)
	for page := range slices.Chunk(obs, 1+rng.IntN(20)) {
		if replay {
			break
		}
		k, err := x.Filter(page, now)
		if err == nil {
			k, err = x.StoreNew(ctx, d.st, k, now, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, k...)
		for len(kept) >= batch {
			rest, err := x.ApplyAhead(ctx, d.st, kept[:batch], now, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rest) > 0 {
				break
			}
			kept = kept[batch:]
		}
	}
	// A long listing ends well after its first pages were written: the
	// poll is still judged when they were, so what a stalled rule falls
	// due for meanwhile waits for the next poll, as it would have had the
	// listing been quick.
	at := now
	if x.aheadAt != nil {
		at = now.Add(5 * time.Minute)
	}
	res, err := Apply(ctx, d.st, src, Poll{Observations: kept, Complete: complete, Now: at, Index: x, Replay: replay})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// aheadKinds are transitions as what is written ahead keeps them: kind and id.
func aheadKinds(in []Transition) []string {
	var out []string
	for _, v := range in {
		out = append(out, v.Kind+" "+v.ID)
	}
	return out
}

// eventRecords are d's stored events, oldest first, with what a receiver
// sees of each but its id and time.
func (d *db) eventRecords() []string {
	d.t.Helper()
	var out []string
	err := d.st.View(func(t store.Txn) error {
		return t.Events("", func(e *event.Event) bool {
			out = append([]string{fmt.Sprintf("%s %s %s %s→%s %s", e.Type, e.Kind, e.ItemID, e.Previous, e.Current, e.Object)}, out...)
			return true
		})
	})
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// storedObservations are d's stored items of source "s" as observations.
func storedObservations(t *testing.T, d *db) []Observation {
	t.Helper()
	var obs []Observation
	if err := d.st.View(func(tx store.Txn) error {
		return tx.Items("s", func(id string, it *store.Item) error {
			obs = append(obs, Observation{ID: id, State: it.State, Object: it.Object})
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return obs
}

// reference is what the pure Compare makes of obs against every stored
// record of d's source "s": its transitions and the records it leaves.
func reference(t *testing.T, d *db, settle int, complete bool, obs []Observation, now time.Time) ([]string, []string) {
	t.Helper()
	prev := map[string]*store.Item{}
	if err := d.st.View(func(tx store.Txn) error {
		return tx.Items("s", func(id string, it *store.Item) error {
			prev[id] = it
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	src := parseSource(t, fmt.Sprintf(streamSource, settle))
	ss := d.sourceState("s")
	changes := Compare(prev, obs, Options{
		Baseline: !ss.Baselined, Complete: complete, Deletes: true,
		Settle: settle, Stalls: src.Stalls(), Now: now,
	})
	for _, c := range changes {
		if c.Item == nil {
			delete(prev, c.ID)
		} else {
			prev[c.ID] = c.Item
		}
	}
	var items []string
	for _, id := range slices.Sorted(maps.Keys(prev)) {
		items = append(items, storedRecord(id, prev[id]))
	}
	return transitions(changes), items
}

func storedRecord(id string, it *store.Item) string {
	return fmt.Sprintf("%s %s %s %v %v %s %d %v", id, it.State, it.Object, it.Since.UTC(), it.History, it.Pending, it.PendingCount, it.Stalled)
}

func transitions[T Change | Transition](in []T) []string {
	var out []string
	for _, v := range in {
		switch v := any(v).(type) {
		case Change:
			out = append(out, transitions(v.Transitions)...)
		case Transition:
			out = append(out, fmt.Sprintf("%s %s %s→%s %s", v.Kind, v.ID, v.Previous, v.Current, v.Object))
		}
	}
	return out
}

// dump lists every stored item of source "s" with all its fields.
func dump(t *testing.T, d *db) []string {
	t.Helper()
	var out []string
	if err := d.st.View(func(tx store.Txn) error {
		return tx.Items("s", func(id string, it *store.Item) error {
			out = append(out, storedRecord(id, it))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A baseline filtered page by page stores its new items as the pages
// come, starting their watch_from watches, and Apply then records the
// baseline with the right counts and no events. A poll that fails after
// storing some pages leaves those items for the next baseline, which
// still emits nothing.
func TestBaselineStoredAhead(t *testing.T) {
	ctx := context.Background()
	list := parseSource(t, "  - {name: l, url: 'https://x.test/l', items: '.data[]'}\n")
	ws := parseSource(t, "  - {name: w, url: 'https://x.test/t/{id}', terminal: [ready]}\n")
	ws.WatchFrom = "l"
	watchers := []*Source{ws}
	var obs []Observation
	for i := range 30 {
		obs = append(obs, ob(fmt.Sprintf("i%02d", i), []string{"queued", "ready", "processing"}[i%3]))
	}
	pages := slices.Collect(slices.Chunk(obs, 7))

	// The whole poll, page by page.
	d := newDB(t)
	x := LoadIndex(d.st, list, 0)
	var rest []Observation
	for i, page := range pages {
		k, err := x.Filter(page, t0)
		if err == nil {
			k, err = x.StoreNew(ctx, d.st, k, t0, watchers)
		}
		if err != nil || len(k) != 0 {
			t.Fatalf("page %d: %d left for Apply, %v", i, len(k), err)
		}
		if got := d.count("l"); got != min(7*(i+1), 30) {
			t.Fatalf("after page %d, %d items stored", i, got)
		}
		rest = append(rest, k...)
	}
	res, err := Apply(ctx, d.st, list, Poll{Observations: rest, Complete: true, Now: t0, Index: x, Watchers: watchers})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Baseline || res.Tracked != 30 || res.Changes != 30 || len(res.Events) != 0 || res.WatchesAdded["w"] != 20 {
		t.Fatalf("baseline %v, tracked %d, changes %d, events %d, watches %v", res.Baseline, res.Tracked, res.Changes, len(res.Events), res.WatchesAdded)
	}
	if !d.sourceState("l").Baselined || d.watch("i00") == nil || d.watch("i01") != nil {
		t.Fatalf("baselined %v, i00 watched %v, i01 (ready) watched %v", d.sourceState("l").Baselined, d.watch("i00") != nil, d.watch("i01") != nil)
	}
	if it := d.item("l", "i05"); it == nil || string(it.Object) != string(obs[5].Object) {
		t.Fatalf("i05 stored as %+v", it)
	}

	// The same poll failing after two pages; meanwhile i00 moves on and i01
	// disappears upstream. The next baseline, given the listing whole,
	// finds the two pages stored, brings i00 up to date and forgets i01,
	// and still emits nothing; nothing about either comes later.
	d = newDB(t)
	x = LoadIndex(d.st, list, 0)
	for _, page := range pages[:2] {
		k, err := x.Filter(page, t0)
		if err == nil {
			_, err = x.StoreNew(ctx, d.st, k, t0, watchers)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if d.sourceState("l").Baselined || d.count("l") != 14 {
		t.Fatalf("a failed poll marked the baseline, or stored %d items", d.count("l"))
	}
	next := append([]Observation{ob("i00", "ready")}, obs[2:]...)
	res, err = Apply(ctx, d.st, list, Poll{Observations: next, Complete: true, Now: t0.Add(time.Minute), Watchers: watchers})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Baseline || res.Tracked != 29 || len(res.Events) != 0 || len(d.events()) != 0 {
		t.Fatalf("the next baseline: baseline %v, tracked %d, events %v", res.Baseline, res.Tracked, d.events())
	}
	if it := d.item("l", "i00"); string(it.State) != `"ready"` || d.item("l", "i01") != nil || d.count("l") != 29 {
		t.Fatalf("after the baseline: i00 %s, i01 stored %v, %d items", it.State, d.item("l", "i01") != nil, d.count("l"))
	}
	res, err = Apply(ctx, d.st, list, Poll{Observations: append(slices.Clone(next), ob("i99", "queued")), Complete: true, Now: t0.Add(2 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.events(); !slices.Equal(got, []string{"l.created:i99"}) || res.Tracked != 30 {
		t.Fatalf("the poll after: events %v, tracked %d", got, res.Tracked)
	}
}

func (d *db) item(source, id string) *store.Item {
	d.t.Helper()
	var it *store.Item
	if err := d.st.View(func(t store.Txn) error {
		var err error
		it, err = t.Item(source, id)
		return err
	}); err != nil {
		d.t.Fatal(err)
	}
	return it
}

// A listing filtered page by page is judged at Apply's Now like a listing
// given whole: a stalled rule that fell due after Filter dropped its item
// still fires in this poll, and only for the item it fell due for.
func TestFilteredListingJudgedAtNow(t *testing.T) {
	ctx := context.Background()
	const yaml = `  - name: s
    url: https://x.test/s
    items: '.data[]'
    events:
      - {type: job.stuck, on: stalled, state: queued, after: 3m}
`
	src := parseSource(t, yaml)
	d := newDB(t)
	mustApply(t, d, yaml, Poll{Observations: []Observation{ob("a", "queued"), ob("b", "queued"), ob("c", "queued")}, Complete: true, Now: t0})
	// b entered its state a minute later, so its rule falls due at 4m.
	d.update(func(tx store.Txn) error {
		it, err := tx.Item("s", "b")
		if err != nil {
			return err
		}
		it.Since = t0.Add(time.Minute)
		return tx.PutItem("s", "b", it)
	})
	filtered, now := t0.Add(2*time.Minute+50*time.Second), t0.Add(3*time.Minute+20*time.Second)
	x := LoadIndex(d.st, src, 0)
	// c changes, so Filter keeps it; a and b are dropped.
	kept, err := x.Filter([]Observation{ob("a", "queued"), ob("b", "queued"), ob("c", "ready")}, filtered)
	if err != nil || len(kept) != 1 {
		t.Fatalf("kept %d, %v", len(kept), err)
	}
	if _, err := Apply(ctx, d.st, src, Poll{Observations: kept, Complete: true, Now: now, Index: x}); err != nil {
		t.Fatal(err)
	}
	if got := d.events(); !slices.Equal(got, []string{"job.stuck:a"}) {
		t.Fatalf("events = %v, want a's stall alone", got)
	}
	if it := d.item("s", "c"); string(it.State) != `"ready"` {
		t.Fatalf("c stored as %+v", it)
	}
	if it := d.item("s", "a"); !slices.Equal(it.Stalled, []int{0}) || string(it.Object) != string(ob("a", "queued").Object) {
		t.Fatalf("a stored as %+v", it)
	}
}

// A poll stopped while what it writes ahead is being made (shutdown, a
// lease that ran out) commits nothing more of that batch (groups a large
// batch committed earlier, each item with its events, stay): a `when`
// rule cut short must not leave an item in its new state without its
// event.
func TestWriteAheadStoppedWritesNothing(t *testing.T) {
	const yaml = `  - name: s
    url: https://x.test/s
    items: '.data[]'
    events:
      - {type: job.ready, on: changed, to: ready, when: '.current == "ready"'}
`
	src := parseSource(t, yaml)
	d := newDB(t)
	mustApply(t, d, yaml, Poll{Observations: []Observation{ob("a", "queued")}, Complete: true, Now: t0})
	before := dump(t, d)
	x := LoadIndex(d.st, src, 1)
	kept, err := x.Filter([]Observation{ob("a", "ready")}, t0.Add(time.Minute))
	if err != nil || len(kept) != 1 {
		t.Fatalf("filter: %v, %d kept", err, len(kept))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := x.ApplyAhead(ctx, d.st, kept, t0.Add(time.Minute), nil); err == nil {
		t.Fatal("a stopped poll's batch was written")
	}
	if got := dump(t, d); !slices.Equal(got, before) {
		t.Errorf("stored items changed by a stopped poll:\n got %v\nwant %v", got, before)
	}
	if evs := d.events(); len(evs) != 0 {
		t.Errorf("events = %v", evs)
	}
}
