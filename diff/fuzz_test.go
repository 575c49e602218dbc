package diff

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// fuzzItem is one entry of a fuzzer's item list.
type fuzzItem struct {
	id, state, pending string
	count              int
}

// parseItems reads the fuzzer's compact item lists: entries separated by
// ';', each "id=state" with an optional ",pending,count" for a stored
// item that is settling. A string keeps the input short, so the fuzzer
// mutates ids and states rather than structure.
func parseItems(s string) []fuzzItem {
	var out []fuzzItem
	for _, e := range strings.Split(s, ";") {
		id, rest, ok := strings.Cut(e, "=")
		if !ok {
			continue
		}
		parts := strings.SplitN(rest, ",", 3)
		x := fuzzItem{id: id, state: parts[0]}
		if len(parts) == 3 {
			x.pending = parts[1]
			x.count, _ = strconv.Atoi(parts[2])
		}
		out = append(out, x)
	}
	return out
}

// FuzzCompare feeds Compare arbitrary stored and observed sets and checks
// the promises it makes: no transition for an item whose state did not
// change, created only for unknown ids, deleted only after a complete
// listing, settle honoured, and one change per id.
func FuzzCompare(f *testing.F) {
	f.Add("a=queued;b=ready", "a=ready;c=new", byte(0b0111), uint8(1))
	f.Add("a=queued,ready,1", "a=ready;a=queued", byte(0b0011), uint8(2))
	f.Add("", "a=x;a=y;b=", byte(0b1001), uint8(0))
	f.Fuzz(func(t *testing.T, prevS, obsS string, flags byte, settle uint8) {
		o := Options{
			Complete:     flags&1 != 0,
			Deletes:      flags&2 != 0,
			Baseline:     flags&4 != 0,
			EmitExisting: flags&8 != 0,
			Settle:       int(settle % 5),
			Now:          t0,
		}
		prev := map[string]*store.Item{}
		for _, p := range parseItems(prevS) {
			i := it(p.state)
			if p.pending != "" {
				i.Pending, i.PendingCount = js(p.pending), p.count
			}
			prev[p.id] = i
		}
		var obs []Observation
		first := map[string]json.RawMessage{} // the first occurrence wins
		for _, p := range parseItems(obsS) {
			obs = append(obs, ob(p.id, p.state))
			if _, ok := first[p.id]; !ok {
				first[p.id] = js(p.state)
			}
		}

		changes := Compare(prev, obs, o)
		ids := map[string]bool{}
		for _, c := range changes {
			if ids[c.ID] {
				t.Fatalf("two changes for %q", c.ID)
			}
			ids[c.ID] = true
			old, known := prev[c.ID]
			cur, seen := first[c.ID]
			for _, tr := range c.Transitions {
				if tr.ID != c.ID {
					t.Fatalf("transition for %q inside the change for %q", tr.ID, c.ID)
				}
				switch tr.Kind {
				case event.Created:
					if known || !seen {
						t.Fatalf("created %q: known=%t seen=%t", c.ID, known, seen)
					}
					if o.Baseline && !o.EmitExisting {
						t.Fatalf("created %q during a silent baseline", c.ID)
					}
				case event.Changed:
					if !known || !seen || bytes.Equal(old.State, cur) {
						t.Fatalf("changed %q without a change: known=%t seen=%t", c.ID, known, seen)
					}
					if !bytes.Equal(tr.Previous, old.State) || !bytes.Equal(tr.Current, cur) {
						t.Fatalf("changed %q: %s→%s, stored %s observed %s", c.ID, tr.Previous, tr.Current, old.State, cur)
					}
					settled := o.Settle <= 1 || (bytes.Equal(old.Pending, cur) && old.PendingCount+1 >= o.Settle)
					if !settled {
						t.Fatalf("changed %q before settling (%d/%d)", c.ID, old.PendingCount, o.Settle)
					}
					if c.Item == nil || !bytes.Equal(c.Item.State, cur) {
						t.Fatalf("changed %q but stored %v", c.ID, c.Item)
					}
				case event.Deleted:
					if !known || seen || !o.Complete || !o.Deletes || o.Baseline {
						t.Fatalf("deleted %q: known=%t seen=%t complete=%t deletes=%t baseline=%t", c.ID, known, seen, o.Complete, o.Deletes, o.Baseline)
					}
				default:
					t.Fatalf("unexpected %s for %q (no stalled rules)", tr.Kind, c.ID)
				}
			}
			if o.Baseline && !o.EmitExisting && len(c.Transitions) > 0 {
				t.Fatalf("%q: %v during a silent baseline", c.ID, c.Transitions)
			}
			if known && seen && bytes.Equal(old.State, cur) && len(c.Transitions) > 0 {
				t.Fatalf("%q unchanged but got %v", c.ID, c.Transitions)
			}
		}
	})
}
