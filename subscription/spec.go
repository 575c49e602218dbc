// Package subscription is the one home of a subscription: the Spec a user
// writes (an entry of config.yaml's subscriptions:, a /v1 body, a
// vendor-shaped API's webhook), its validation with paths, and the
// Registry that merges the config file's subscriptions with those created
// through the API.
//
// A Spec is plain data. What running one needs (its signer, its compiled
// payload program) is built from it by Subscription, so comparing two
// Specs compares what the user wrote.
package subscription

import (
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/signature"
)

// Spec is a subscription as a user writes it. The koanf tags are its keys
// in the config file and in API bodies alike; MarshalJSON is the form the
// API shows and stores, which the API takes back unchanged.
type Spec struct {
	Name        string            `koanf:"name"`
	URL         string            `koanf:"url"`
	Method      string            `koanf:"method"`
	Events      []string          `koanf:"events"` // globs over event types; empty = all
	Secret      any               `koanf:"secret"` // string or list of strings
	Signature   any               `koanf:"signature"`
	Headers     map[string]string `koanf:"headers"`
	Payload     string            `koanf:"payload"`
	Timeout     time.Duration     `koanf:"timeout"`
	Retry       Retry             `koanf:"retry"`
	Ordering    string            `koanf:"ordering"` // resource | none
	MaxInFlight int               `koanf:"max_in_flight"`

	DisableAfter       time.Duration `koanf:"disable_after"`
	InsecureSkipVerify bool          `koanf:"insecure_skip_verify"`
	// TestEvent is the vendor's own test event type (DAM's LOADER_PING).
	// Set, a ping goes out under it through the payload program, as the
	// vendor's test would; empty, a ping is a pollrelay.ping in
	// pollrelay's envelope, so it can never look like a transition.
	TestEvent string `koanf:"test_event"`
	// Template marks a config subscription that is never delivered to:
	// the subscriptions a vendor-shaped API (compat:) creates take its
	// payload, signature, retry and timeout. Its url may be empty.
	Template bool `koanf:"template"`
}

// Retry is a subscription's retry policy.
type Retry struct {
	// Schedule is the delay before each retry, after the immediate try.
	Schedule []time.Duration `koanf:"schedule"`
	// Every and For are a shorthand for a flat schedule, as vendors often
	// document it ("every 30 minutes for 24 hours"): For/Every retries,
	// Every apart. Normalisation expands them into Schedule.
	Every time.Duration `koanf:"every"`
	For   time.Duration `koanf:"for"`
	// Jitter spreads each delay by ±this fraction so deliveries that
	// failed together don't return as one wave; 0 keeps a vendor's exact
	// documented delays. Absent means DefaultRetryJitter.
	Jitter *float64 `koanf:"jitter"`
}

// DefaultRetrySchedule is used when a subscription sets none.
var DefaultRetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// DefaultRetryJitter is the spread of retry delays when a subscription
// sets none: ±20%.
const DefaultRetryJitter = 0.2

// MaxInFlightLimit bounds a subscription's concurrent deliveries: each is
// a connection to the receiver.
const MaxInFlightLimit = 1000

// maxRetrySchedule bounds the retries of one delivery.
const maxRetrySchedule = 100

// Default is what every subscription starts from: a key the file or the
// body leaves out keeps the value here. Retry.Schedule is left nil so
// normalisation can tell "absent" (use DefaultRetrySchedule) from an
// explicit empty list (no retries).
func Default() Spec {
	return Spec{
		Method:      "POST",
		Timeout:     15 * time.Second,
		Ordering:    "resource",
		MaxInFlight: 16,
	}
}

// Secrets returns the secrets of `secret:`, newest first. A list element
// that is not a string is "", so validation names its index.
func (s *Spec) Secrets() []string {
	switch x := s.Secret.(type) {
	case string:
		return []string{x}
	case []string:
		return append([]string(nil), x...)
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			out[i], _ = e.(string)
		}
		return out
	}
	return nil
}

// Scheme returns the signature scheme `signature:` names, with the
// defaults filled in: standard when absent, hex for hmac-sha256.
func (s *Spec) Scheme() signature.Scheme {
	return parseScheme("signature", s.Signature, nil)
}

// specJSON is a Spec as the API shows it: durations in Go's notation, the
// scheme as a mapping, and never the secret.
type specJSON struct {
	Name               string            `json:"name"`
	URL                string            `json:"url"`
	Method             string            `json:"method"`
	Events             []string          `json:"events"`
	Signature          schemeJSON        `json:"signature"`
	Headers            map[string]string `json:"headers,omitempty"`
	Payload            string            `json:"payload,omitempty"`
	Timeout            string            `json:"timeout"`
	Retry              retryJSON         `json:"retry"`
	Ordering           string            `json:"ordering"`
	MaxInFlight        int               `json:"max_in_flight"`
	DisableAfter       string            `json:"disable_after,omitempty"`
	InsecureSkipVerify bool              `json:"insecure_skip_verify,omitempty"`
	TestEvent          string            `json:"test_event,omitempty"`
	Template           bool              `json:"template,omitempty"`
}

type schemeJSON struct {
	Scheme   string `json:"scheme"`
	Header   string `json:"header,omitempty"`
	Encoding string `json:"encoding,omitempty"`
}

type retryJSON struct {
	// Schedule is absent only before normalisation: an empty list means
	// no retries, so it must show.
	Schedule *[]string `json:"schedule,omitempty"`
	Every    string    `json:"every,omitempty"`
	For      string    `json:"for,omitempty"`
	Jitter   *float64  `json:"jitter,omitempty"`
}

// MarshalJSON encodes the spec in the form Decode reads back: the API
// shows it, PATCH takes it, and the store keeps API subscriptions in it.
// The secret is left out: the API shows it once, when it is made.
func (s Spec) MarshalJSON() ([]byte, error) {
	sc := s.Scheme()
	if sc.Name == "" {
		sc.Name = signature.SchemeStandard
	}
	out := specJSON{
		Name: s.Name, URL: s.URL, Method: s.Method, Events: s.Events,
		Signature: schemeJSON{Scheme: sc.Name, Header: sc.Header, Encoding: sc.Encoding},
		Headers:   s.Headers, Payload: s.Payload, Timeout: s.Timeout.String(),
		Retry:    retryJSON{Every: durationOrEmpty(s.Retry.Every), For: durationOrEmpty(s.Retry.For), Jitter: s.Retry.Jitter},
		Ordering: s.Ordering, MaxInFlight: s.MaxInFlight,
		DisableAfter: durationOrEmpty(s.DisableAfter), InsecureSkipVerify: s.InsecureSkipVerify, TestEvent: s.TestEvent,
		Template: s.Template,
	}
	if out.Events == nil {
		out.Events = []string{}
	}
	if s.Retry.Schedule != nil {
		sched := make([]string, len(s.Retry.Schedule))
		for i, d := range s.Retry.Schedule {
			sched[i] = d.String()
		}
		out.Retry.Schedule = &sched
	}
	// Canonical leaves `<` in a payload program as it is, as the API
	// answers.
	return event.Canonical(out)
}

func durationOrEmpty(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}
