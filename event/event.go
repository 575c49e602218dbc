// Package event holds the values that flow from the diff to the notifier:
// events, their webhook envelope and their ids. It imports nothing of
// pollrelay's, so every other package can use it.
package event

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Kinds of transition.
const (
	Created      = "created"
	Changed      = "changed"
	Deleted      = "deleted"
	Stalled      = "stalled"
	WatchExpired = "watch_expired"
	// MemberAdded and MemberRemoved are one element joining or leaving a
	// list inside an item's state (an album's asset ids, say).
	MemberAdded   = "member_added"
	MemberRemoved = "member_removed"
	Ping          = "ping"
)

// MaxKeyPart is the most bytes an item or watch id, a source name or a
// subscription name may have: each becomes part of a store key, and every
// backend bounds its keys. An upstream item whose id is longer is skipped
// (quarantined) by its poll; a name or a watch id that long is refused.
const MaxKeyPart = 1024

// Null is the canonical JSON null, the state of an item that does not exist.
var Null = json.RawMessage("null")

// Event is one transition turned into a webhook-to-be. Its ID is the
// webhook-id: stable across retries and subscriptions.
type Event struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Kind     string          `json:"kind"`
	Source   string          `json:"source"`
	ItemID   string          `json:"item_id"`
	Previous json.RawMessage `json:"previous"`
	Current  json.RawMessage `json:"current"`
	Object   json.RawMessage `json:"object,omitempty"`
	Watch    *Watch          `json:"watch,omitempty"`
	// Member is the list element a member_added/member_removed event is
	// about.
	Member    json.RawMessage `json:"member,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
}

// Watch is the per-watch context echoed in events of watch sources.
type Watch struct {
	Metadata json.RawMessage `json:"metadata"`
}

// Resource identifies the item an event is about; deliveries of one resource
// are ordered. Source names never contain NUL, so the id after the first
// one is the whole rest, whatever bytes it holds.
func (e *Event) Resource() string { return e.Source + "\x00" + e.ItemID }

// Data is the envelope's data member.
type Data struct {
	Source   string          `json:"source"`
	ID       string          `json:"id"`
	Previous json.RawMessage `json:"previous"`
	Current  json.RawMessage `json:"current"`
	Object   json.RawMessage `json:"object"`
	Watch    *Watch          `json:"watch,omitempty"`
	Member   json.RawMessage `json:"member,omitempty"`
}

// Envelope is the default webhook body.
type Envelope struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      Data   `json:"data"`
}

// TimestampFormat is the envelope's timestamp layout: RFC 3339, UTC,
// milliseconds.
const TimestampFormat = "2006-01-02T15:04:05.000Z07:00"

// Envelope returns the default webhook body for e.
func (e *Event) Envelope() Envelope {
	return Envelope{
		Type:      e.Type,
		Timestamp: e.CreatedAt.UTC().Format(TimestampFormat),
		Data:      e.Data(),
	}
}

// Data returns the envelope's data member.
func (e *Event) Data() Data {
	obj := e.Object
	if len(obj) == 0 {
		obj = Null
	}
	return Data{
		Source:   e.Source,
		ID:       e.ItemID,
		Previous: orNull(e.Previous),
		Current:  orNull(e.Current),
		Object:   obj,
		Watch:    e.Watch,
		Member:   e.Member,
	}
}

// EnvelopeJSON is the default body encoded.
func (e *Event) EnvelopeJSON() ([]byte, error) {
	b, err := json.Marshal(e.Envelope())
	if err != nil {
		return nil, fmt.Errorf("encode envelope of %s: %w", e.ID, err)
	}
	return b, nil
}

func orNull(r json.RawMessage) json.RawMessage {
	if len(r) == 0 {
		return Null
	}
	return r
}

// Canonical encodes v as canonical JSON: object keys sorted, no insignificant
// space. Two states are equal when their canonical forms are.
func Canonical(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Text renders a canonical state for an event type or a log line: strings
// without quotes, anything else as JSON.
func Text(state json.RawMessage) string {
	if len(state) > 1 && state[0] == '"' {
		var s string
		if json.Unmarshal(state, &s) == nil {
			return s
		}
	}
	if len(state) == 0 {
		return "null"
	}
	return string(state)
}

var (
	idMu      sync.Mutex
	idEntropy = ulid.Monotonic(rand.Reader, 0)
)

// NewID returns a new event id: "evt_" and a ULID, so ids sort by creation
// time, which the event log and per-resource ordering rely on.
func NewID(now time.Time) string {
	idMu.Lock()
	defer idMu.Unlock()
	return "evt_" + ulid.MustNew(ulid.Timestamp(now), idEntropy).String()
}
