package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// Quarantine kinds: what was set aside. They label
// pollrelay_quarantined_total{kind}.
const (
	// QuarantineItem is an upstream item its polls skip: its id is over
	// MaxKeyPart. The rest of the listing is applied.
	QuarantineItem = "item"
	// QuarantineEvent is an outbox event fan-out could not read.
	QuarantineEvent = "event"
	// QuarantineDelivery is a delivery that could not be stored or read
	// back: the other deliveries of its subscription and event go on.
	QuarantineDelivery = "delivery"
)

// QuarantineKinds lists every kind, for metrics created up front.
var QuarantineKinds = []string{QuarantineItem, QuarantineEvent, QuarantineDelivery}

// maxQuotedID is how much of an over-limit id a quarantine record keeps.
const maxQuotedID = 256

// Quarantined is a record the pipeline could not process, set aside with
// the reason so that everything else keeps flowing.
type Quarantined struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	Source string `json:"source,omitempty"`
	// ItemID is the item's id, cut to its first 256 bytes when longer;
	// ItemIDBytes is its whole length.
	ItemID       string `json:"item_id,omitempty"`
	ItemIDBytes  int    `json:"item_id_bytes,omitempty"`
	EventID      string `json:"event_id,omitempty"`
	Subscription string `json:"subscription,omitempty"`
	// Count is how many times the record was set aside (an item, once per
	// poll that skipped it).
	Count   int       `json:"count"`
	FirstAt time.Time `json:"first_at"`
	LastAt  time.Time `json:"last_at"`
	// Raw is the record as it was stored or built (a delivery), which a
	// retry puts back.
	Raw json.RawMessage `json:"raw,omitempty"`
}

// QuarantineID names the quarantine record of what q is about, so setting
// the same thing aside again updates one record. Ids of any length map to
// a short key.
func QuarantineID(q *Quarantined) string {
	h := sha256.New()
	for _, p := range []string{q.Kind, q.Source, q.ItemID, q.EventID, q.Subscription} {
		h.Write(appendPart(nil, p))
	}
	return "qr_" + hex.EncodeToString(h.Sum(nil)[:12])
}

// CutID cuts an id to at most n bytes for a quarantine record or a log
// line, at a rune boundary when the id is UTF-8.
func CutID(id string, n int) string {
	if len(id) <= n {
		return id
	}
	cut := n
	for cut > n-utf8.UTFMax && cut > 0 && !utf8.RuneStart(id[cut]) {
		cut--
	}
	return id[:cut]
}

var quarantinePrefix = []byte("x/")

func quarantineKey(id string) []byte { return append(bytes.Clone(quarantinePrefix), id...) }

// Quarantine sets q aside at now: a new record, or one more sighting of
// an existing one. The item id is identified whole and kept cut (see
// CutID). Counted in pollrelay_quarantined_total once committed.
func (t *Txn) Quarantine(q Quarantined, now time.Time) error {
	full := q.ItemID
	q.ID = QuarantineID(&q)
	if len(full) > maxQuotedID {
		q.ItemID, q.ItemIDBytes = CutID(full, maxQuotedID), len(full)
	}
	prev, err := t.QuarantineRecord(q.ID)
	if err != nil && !IsBadRecord(err) {
		return err
	}
	q.Count, q.FirstAt, q.LastAt = 1, now, now
	if prev != nil {
		q.Count, q.FirstAt = prev.Count+1, prev.FirstAt
	}
	v, err := json.Marshal(&q)
	if err != nil {
		return fmt.Errorf("encode quarantine %s: %w", q.ID, err)
	}
	if err := t.set(quarantineKey(q.ID), v); err != nil {
		return fmt.Errorf("write quarantine %s: %w", q.ID, err)
	}
	t.NoteQuarantined(q.Kind, 1)
	return nil
}

// NoteQuarantined counts n more records of kind set aside without a
// record of their own (past a poll's first few over-limit items).
func (t *Txn) NoteQuarantined(kind string, n int) {
	if n <= 0 {
		return
	}
	if t.quarantined == nil {
		t.quarantined = map[string]int{}
	}
	t.quarantined[kind] += n
}

// QuarantineRecord returns a quarantine record, or nil.
func (t *Txn) QuarantineRecord(id string) (*Quarantined, error) {
	v, err := t.get(quarantineKey(id))
	if err != nil || v == nil {
		return nil, wrap(err, "read quarantine %s", id)
	}
	var q Quarantined
	if err := json.Unmarshal(v, &q); err != nil {
		return nil, bad(fmt.Errorf("decode quarantine %s: %w", id, err))
	}
	return &q, nil
}

// QuarantineRecords calls fn for the quarantine records after the id
// `after` (empty = from the first), in id order, until fn returns false.
// A record that cannot be decoded is skipped.
func (t *Txn) QuarantineRecords(after string, fn func(*Quarantined) bool) error {
	var start []byte
	if after != "" {
		start = append(quarantineKey(after), 0)
	}
	return t.scan(quarantinePrefix, start, false, func(_, v []byte) (bool, error) {
		var q Quarantined
		if json.Unmarshal(v, &q) != nil {
			return true, nil
		}
		return fn(&q), nil
	})
}

// DeleteQuarantine forgets a quarantine record.
func (t *Txn) DeleteQuarantine(id string) error {
	return wrap(t.del(quarantineKey(id)), "delete quarantine %s", id)
}

// QuarantineDelivery sets a stored delivery aside: its record moves into
// the quarantine record, which a retry puts back, and its schedule key
// (due at `at`, when known) goes. A resource-order entry left behind is
// dropped by the notifier once it finds the delivery gone.
func (t *Txn) QuarantineDelivery(sub, eventID string, at time.Time, reason string, now time.Time) error {
	raw, err := t.get(deliveryKey(sub, eventID))
	if err != nil {
		return fmt.Errorf("quarantine delivery %s/%s: %w", sub, eventID, err)
	}
	q := Quarantined{Kind: QuarantineDelivery, Reason: reason, EventID: eventID, Subscription: sub}
	if json.Valid(raw) {
		q.Raw = raw
	}
	if err := t.Quarantine(q, now); err != nil {
		return err
	}
	if !at.IsZero() {
		if err := t.del(dueKey(sub, at, eventID)); err != nil {
			return fmt.Errorf("quarantine delivery %s/%s: %w", sub, eventID, err)
		}
	}
	return wrap(t.del(deliveryKey(sub, eventID)), "quarantine delivery %s/%s", sub, eventID)
}
