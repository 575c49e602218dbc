package diff

import (
	"fmt"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// maxQuarantinedPerPoll is how many skipped items one poll records by name
// in the quarantine; the rest are counted. A listing of a million
// over-limit ids writes a handful of records, not a million.
const maxQuarantinedPerPoll = 16

// skipped collects the items of a listing a poll cannot process: an id
// too long to store (store.MaxKeyPart), or a stored record that cannot be
// decoded. Each is skipped and the rest of the listing applied; a skipped
// item is neither created, nor changed, nor deleted.
type skipped struct {
	n    int
	recs []skippedItem // the first maxQuarantinedPerPoll, ids whole
}

type skippedItem struct{ id, reason string }

func tooLong(id string) bool { return len(id) > store.MaxKeyPart }

func tooLongReason(id string) string {
	return fmt.Sprintf("id is %d bytes, over the %d-byte limit: every poll skips the item", len(id), store.MaxKeyPart)
}

func (o *skipped) clone() skipped {
	return skipped{n: o.n, recs: append([]skippedItem(nil), o.recs...)}
}

func (o *skipped) note(id, reason string) {
	if o.n < maxQuarantinedPerPoll {
		o.recs = append(o.recs, skippedItem{id, reason})
	}
	o.n++
}

// skippedOf collects the over-limit items of a listing not filtered.
func skippedOf(obs []Observation) skipped {
	var o skipped
	for _, ob := range obs {
		if tooLong(ob.ID) {
			o.note(ob.ID, tooLongReason(ob.ID))
		}
	}
	return o
}

// record writes the quarantine records of a poll's skipped items and
// counts the rest.
func (o *skipped) record(t store.Txn, source string, now time.Time) error {
	for _, r := range o.recs {
		q := store.Quarantined{Kind: store.QuarantineItem, Source: source, ItemID: r.id, Reason: r.reason}
		if err := t.Quarantine(q, now); err != nil {
			return err
		}
	}
	t.NoteQuarantined(store.QuarantineItem, o.n-len(o.recs))
	return nil
}

// report fills res's account of the skipped items, for the poll's log line.
func (o *skipped) report(res *Result) {
	res.Quarantined = o.n
	if o.n > 0 {
		r := o.recs[0]
		res.QuarantinedID, res.QuarantinedIDBytes, res.QuarantinedReason = store.CutID(r.id, 256), len(r.id), r.reason
	}
}
