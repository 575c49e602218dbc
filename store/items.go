package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// HistoryLen is how many past states an item keeps for the API.
const HistoryLen = 10

// Item is what pollrelay remembers of one upstream item.
type Item struct {
	State  json.RawMessage `json:"s"`
	Object json.RawMessage `json:"o,omitempty"`
	// Since is when the item entered State (its first poll in it).
	Since time.Time `json:"t"`
	// History holds past states, oldest first, ending with the current one.
	History []HistoryEntry `json:"h,omitempty"`
	// Pending is a state seen but not yet settled (settle > 1), with the
	// number of consecutive polls it was seen on.
	Pending      json.RawMessage `json:"p,omitempty"`
	PendingCount int             `json:"pc,omitempty"`
	// Stalled lists the stalled rules (by index) that fired during this stay.
	Stalled []int `json:"st,omitempty"`
}

// HistoryEntry is one past state.
type HistoryEntry struct {
	State json.RawMessage `json:"s"`
	At    time.Time       `json:"t"`
}

// SourceState is what a source remembers across polls and restarts.
type SourceState struct {
	// Baselined is set by the first successful poll, which records what
	// exists without emitting events.
	Baselined bool `json:"baselined"`
	// ETag and LastModified are the validators of the last response whose
	// result is fully stored (no pending settle, no held deletes), sent
	// back as If-None-Match / If-Modified-Since. ValidatorsFor names the
	// source configuration they belong to, so a reload that changes what is
	// fetched or extracted is never answered "not modified".
	ETag          string `json:"etag,omitempty"`
	LastModified  string `json:"last_modified,omitempty"`
	ValidatorsFor string `json:"validators_for,omitempty"`
	// SuspectPolls counts consecutive listings held back by the mass-delete
	// guard.
	SuspectPolls int `json:"suspect_polls,omitempty"`
	// ListingDigest identifies the last complete listing whose outcome is
	// fully stored, and ListingTracked is how many items it left tracked:
	// the same listing again is known to change nothing (see diff).
	ListingDigest  string `json:"listing_digest,omitempty"`
	ListingTracked int    `json:"listing_tracked,omitempty"`
	// Watermark is what an incremental source's next poll asks from
	// (before its lookback), as JSON text of the value the upstream gave,
	// written with the poll whose items it covers. WatermarkFor names the
	// source configuration it belongs to, as ValidatorsFor does, and
	// FullAt is when the last full listing was applied.
	Watermark    string    `json:"watermark,omitempty"`
	WatermarkFor string    `json:"watermark_for,omitempty"`
	FullAt       time.Time `json:"full_at,omitzero"`
}

// CheckItem reports, as a bad record, an item that could not be written
// with its events (an id over MaxKeyPart; an object and states too large
// for one value, as an event carries the object beside the previous and
// current state), so a poll can skip it before writing anything of it.
func CheckItem(source, id string, it *Item) error {
	errs := []error{CheckKeyPart("source name", source), CheckKeyPart("id", id)}
	head := len(it.State) + len(it.Pending)
	for _, h := range it.History {
		head += len(h.State)
	}
	if n := len(it.Object) + 2*head + 4096; n > MaxValue {
		errs = append(errs, Bad(fmt.Errorf("object and states are %d bytes, over the %d-byte limit", n, MaxValue)))
	}
	return errors.Join(errs...)
}
