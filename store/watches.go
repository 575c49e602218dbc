package store

import (
	"encoding/json"
	"time"
)

// Origins of a watch: where its id came from.
const (
	OriginConfig    = "config"     // the source's `ids:`
	OriginAPI       = "api"        // PUT /v1/watches/{source}/{id}
	OriginWatchFrom = "watch_from" // a non-terminal item of the list source named by watch_from
)

// Watch is one watched id of a watch source. The item it observes is
// stored under the normal item keys of its source; the watch record only
// says that the id is polled, for how long, and what to echo in events.
type Watch struct {
	Source string `json:"source"`
	ID     string `json:"id"`
	// Metadata is echoed in every event of the watch as data.watch.metadata.
	Metadata  json.RawMessage `json:"metadata,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	// ExpiresAt is when the watch ends with `{source}.watch_expired`;
	// zero means never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Origin    string    `json:"origin"`
	// ObservedAt is the watch's first successful observation; before it, an
	// observation records the item silently unless its state is terminal.
	ObservedAt time.Time `json:"observed_at,omitzero"`

	// Validators of the last response whose result is fully stored, sent
	// back as If-None-Match / If-Modified-Since. ValidatorsFor names the
	// source configuration they were stored under: a changed URL or jq
	// expression must not be answered "not modified".
	ETag          string `json:"etag,omitempty"`
	LastModified  string `json:"last_modified,omitempty"`
	ValidatorsFor string `json:"validators_for,omitempty"`
}

// Expired reports whether the watch's TTL has run out at now.
func (w *Watch) Expired(now time.Time) bool {
	return !w.ExpiresAt.IsZero() && !now.Before(w.ExpiresAt)
}
