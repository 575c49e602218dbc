package diff

import (
	"fmt"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// maxQuarantinedPerPoll is how many over-limit items one poll records by
// name in the quarantine; the rest are counted. A listing of a million
// such ids writes a handful of records, not a million.
const maxQuarantinedPerPoll = 16

// overLimit collects the items of a listing whose id is too long to store
// (store.MaxKeyPart): each is skipped and the rest of the listing applied.
// A skipped item is neither created nor, if an earlier version stored it,
// deleted.
type overLimit struct {
	n   int
	ids []string // the first maxQuarantinedPerPoll, whole
}

func tooLong(id string) bool { return len(id) > store.MaxKeyPart }

func (o *overLimit) note(id string) {
	if o.n < maxQuarantinedPerPoll {
		o.ids = append(o.ids, id)
	}
	o.n++
}

// overLimitOf collects the over-limit items of a listing not filtered.
func overLimitOf(obs []Observation) overLimit {
	var o overLimit
	for _, ob := range obs {
		if tooLong(ob.ID) {
			o.note(ob.ID)
		}
	}
	return o
}

// reason says why an item is skipped.
func (o *overLimit) reason(id string) string {
	return fmt.Sprintf("id is %d bytes, over the %d-byte limit: every poll skips the item", len(id), store.MaxKeyPart)
}

// record writes the quarantine records of a poll's skipped items and
// counts the rest; Result reports them for the poll's log line.
func (o *overLimit) record(t *store.Txn, source string, now time.Time) error {
	for _, id := range o.ids {
		q := store.Quarantined{Kind: store.QuarantineItem, Source: source, ItemID: id, Reason: o.reason(id)}
		if err := t.Quarantine(q, now); err != nil {
			return err
		}
	}
	t.NoteQuarantined(store.QuarantineItem, o.n-len(o.ids))
	return nil
}

// report fills res's account of the skipped items.
func (o *overLimit) report(res *Result) {
	res.Quarantined = o.n
	if o.n > 0 {
		res.QuarantinedID, res.QuarantinedIDBytes = store.CutID(o.ids[0], 256), len(o.ids[0])
	}
}
