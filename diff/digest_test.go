package diff

import (
	"bytes"
	"testing"
	"time"
)

const digestSrc = "  - {name: s, url: 'https://x.test/s', items: '.data[]', events: [{type: 'x.{current}', on: changed}, {type: 'x.deleted', on: deleted}]}\n"

// The same listing again is not compared, and changes nothing; a listing
// that differs in one state, or loses an item, is compared as usual.
func TestUnchangedListingSkipsTheComparison(t *testing.T) {
	d := newDB(t)
	mustApply(t, d, digestSrc, Poll{Observations: listing(5, "queued"), Complete: true, Now: t0})
	res := mustApply(t, d, digestSrc, Poll{Observations: listing(5, "queued"), Complete: true, Now: t0.Add(time.Minute)})
	if res.Duplicates != -1 || res.Tracked != 5 || res.Changes != 0 {
		t.Fatalf("same listing: duplicates %d, tracked %d, changes %d; want a skipped comparison", res.Duplicates, res.Tracked, res.Changes)
	}
	obs := listing(5, "queued")
	obs[2] = ob("i02", "ready")
	res = mustApply(t, d, digestSrc, Poll{Observations: obs, Complete: true, Now: t0.Add(2 * time.Minute)})
	if res.Duplicates != 0 || len(res.Events) != 1 {
		t.Fatalf("one change: duplicates %d, events %d", res.Duplicates, len(res.Events))
	}
	res = mustApply(t, d, digestSrc, Poll{Observations: obs[:4], Complete: true, Now: t0.Add(3 * time.Minute)})
	if len(res.Events) != 1 || res.Tracked != 4 {
		t.Fatalf("one deleted: events %d, tracked %d", len(res.Events), res.Tracked)
	}
	// The deleted event carries the item's stored object, read on demand.
	if obj := res.Transitions[0].Object; len(obj) == 0 || bytes.Equal(obj, []byte("null")) {
		t.Fatalf("deleted item's object = %s", obj)
	}
}

// An index read in advance gives the same outcome as Apply reading them.
func TestPreloadedIndex(t *testing.T) {
	d := newDB(t)
	mustApply(t, d, digestSrc, Poll{Observations: listing(5, "queued"), Complete: true, Now: t0})
	obs := listing(5, "queued")
	obs[1] = ob("i01", "ready")
	res := mustApply(t, d, digestSrc, Poll{Observations: obs, Complete: true, Now: t0.Add(time.Minute),
		Index: LoadIndex(d.st, parseSource(t, digestSrc), 5)})
	if len(res.Events) != 1 || res.Changes != 1 || res.Tracked != 5 {
		t.Fatalf("events %d, changes %d, tracked %d", len(res.Events), res.Changes, res.Tracked)
	}
	// An index that goes unused (an unchanged listing) are still waited for.
	res = mustApply(t, d, digestSrc, Poll{Observations: obs, Complete: true, Now: t0.Add(2 * time.Minute),
		Index: LoadIndex(d.st, parseSource(t, digestSrc), 5)})
	if res.Duplicates != -1 || res.Changes != 0 {
		t.Fatalf("unchanged: duplicates %d, changes %d", res.Duplicates, res.Changes)
	}
}
