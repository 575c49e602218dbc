package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// MaxQuotedID is how much of an over-limit id a quarantine record keeps.
const MaxQuotedID = 256

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
		h.Write(AppendPart(nil, p))
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

// AppendPart appends p to b so that it ends unambiguously whatever bytes
// it holds: each NUL is written as 0x00 0xff and the part ends with 0x00
// 0x01, so no encoded part is a prefix of another and bytewise order is
// kept. Backends encode key parts this way, and QuarantineID depends on it.
func AppendPart(b []byte, p string) []byte {
	for i := 0; i < len(p); i++ {
		if p[i] == 0 {
			b = append(b, 0, 0xff)
			continue
		}
		b = append(b, p[i])
	}
	return append(b, 0, 1)
}

// SetAside is what every backend's Quarantine does: it names q's record
// (QuarantineID, over the whole item id, which the record keeps cut), and
// writes it, or counts it again on the record of the same thing.
func SetAside(t QuarantineTxn, q Quarantined, now time.Time) error {
	full := q.ItemID
	q.ID = QuarantineID(&q)
	if len(full) > MaxQuotedID {
		q.ItemID, q.ItemIDBytes = CutID(full, MaxQuotedID), len(full)
	}
	prev, err := t.QuarantineRecord(q.ID)
	if err != nil && !IsBadRecord(err) {
		return err
	}
	q.Count, q.FirstAt, q.LastAt = 1, now, now
	if prev != nil {
		q.Count, q.FirstAt = prev.Count+1, prev.FirstAt
	}
	if err := t.PutQuarantined(&q); err != nil {
		return err
	}
	t.NoteQuarantined(q.Kind, 1)
	return nil
}
