package diff

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// An item the store cannot hold (an object over its limit) is skipped by
// the baseline and by later polls, with the reason, and the rest of each
// listing is applied; before, it failed the poll's write, every poll.
func TestItemTooLargeIsSkipped(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 65 MiB object, over Badger's own limit")
	}
	const src = "  - {name: s, url: 'https://x.test/s', items: '.data[]'}\n"
	d := newDB(t)
	huge := json.RawMessage(`"` + strings.Repeat("o", 65<<20) + `"`)
	withObject := func(o Observation, obj json.RawMessage) Observation { o.Object = obj; return o }
	res := mustApply(t, d, src, Poll{Observations: []Observation{ob("a", "queued"), withObject(ob("big", "queued"), huge)}, Complete: true, Now: t0})
	if res.Quarantined != 1 || res.QuarantinedID != "big" || !strings.Contains(res.QuarantinedReason, "object and states") {
		t.Errorf("baseline: %+v, want big skipped", res)
	}
	res = mustApply(t, d, src, Poll{Observations: []Observation{ob("a", "ready"), withObject(ob("big", "ready"), huge), ob("c", "queued")},
		Complete: true, Now: t0.Add(time.Minute)})
	if got := d.events(); !slices.Equal(got, []string{"s.changed:a", "s.created:c"}) {
		t.Errorf("events %q", got)
	}
	if res.Quarantined != 1 || d.count("s") != 2 || res.Tracked != 2 {
		t.Errorf("second poll: %+v, %d items; want big skipped, a and c stored and counted", res, d.count("s"))
	}
	var qs []*store.Quarantined
	if err := d.st.View(func(tx store.Txn) error {
		return tx.QuarantineRecords("", func(q *store.Quarantined) bool { qs = append(qs, q); return true })
	}); err != nil {
		t.Fatal(err)
	}
	if len(qs) != 1 || qs[0].ItemID != "big" || qs[0].Count != 2 {
		t.Errorf("quarantine %+v", qs)
	}
}
