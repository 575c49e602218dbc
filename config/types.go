// Package config loads, normalises and validates pollrelay's YAML
// configuration. Loading happens in four steps: defaults, parse (koanf: YAML,
// ${ENV} expansion, POLLRELAY_ overrides), normalise, validate. Validation
// collects every problem with its path so a user fixes a file in one pass.
package config

import (
	"slices"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/subscription"
)

// Config is a loaded, validated configuration: what the file says, with
// defaults filled in and normalised. It holds plain values only (the
// packages that run sources and subscriptions compile their jq, rules and
// signature schemes), so two loads of one file are equal.
type Config struct {
	Listen        string              `koanf:"listen"`
	APIToken      string              `koanf:"api_token"`
	Storage       Storage             `koanf:"storage"`
	Cluster       Cluster             `koanf:"cluster"`
	Log           Log                 `koanf:"log"`
	Delivery      Delivery            `koanf:"delivery"`
	Sources       []Source            `koanf:"sources"`
	Subscriptions []subscription.Spec `koanf:"subscriptions"`
	// Compat are the vendor-shaped management APIs served beside /v1.
	Compat []Compat `koanf:"compat"`
	// MemoryLimitBytes is the Go runtime's soft memory limit: past it the
	// garbage collector works harder rather than let the heap grow to
	// twice what is live. 0 (the default) sets none; GOMEMLIMIT, when set,
	// wins. See RecommendedMemoryLimit.
	MemoryLimitBytes int64 `koanf:"memory_limit_bytes"`
}

// Compat is one vendor-shaped management API: the vendor's paths, auth,
// fields and answers, over ordinary API subscriptions that take their
// delivery from a template subscription.
type Compat struct {
	Vendor string `koanf:"vendor"` // dam | glossi | gumlet
	// APIKey is what a client sends, the vendor's way; never shown.
	APIKey string `koanf:"api_key"`
	// Template names a config subscription with template: true.
	Template string `koanf:"template"`
	// Listen is the facade's own address; empty serves it on `listen`.
	Listen string `koanf:"listen"`
	// Projects are the DAM project ids a webhook may name.
	Projects []string `koanf:"projects"`
}

// Compat vendors, the values of compat[].vendor.
const (
	VendorDAM    = "dam"
	VendorGlossi = "glossi"
	VendorGumlet = "gumlet"
)

// Storage says where the store is: a Badger directory (the default), or a
// PostgreSQL database shared by every replica when Postgres.URL is set.
type Storage struct {
	Path      string        `koanf:"path"`
	InMemory  bool          `koanf:"in_memory"`
	Retention time.Duration `koanf:"retention"`
	Postgres  Postgres      `koanf:"postgres"`
}

// Postgres is the shared store's database.
type Postgres struct {
	// URL is a postgres:// URL. It may hold a password, which pollrelay
	// never shows.
	URL string `koanf:"url"`
	// Schema holds the tables, created and migrated on start, so several
	// deployments may share a database.
	Schema   string `koanf:"schema"`
	MaxConns int    `koanf:"max_conns"`
}

// Cluster is this replica's place among the members sharing
// storage.postgres: its name and how long its leases last.
type Cluster struct {
	// Member is this replica's name (the pod's name); empty is
	// hostname-pid.
	Member string `koanf:"member"`
	// Lease is how long a member's leases last without renewal: the
	// longest a dead member's sources wait for another member.
	Lease time.Duration `koanf:"lease"`
}

// Log configures log/slog.
type Log struct {
	Level  string `koanf:"level"`  // debug | info | warn | error
	Format string `koanf:"format"` // json | text
}

// Delivery holds settings shared by all subscriptions.
type Delivery struct {
	// AllowPrivateNetworks lets API-created subscriptions target private and
	// loopback addresses. Config subscriptions may always do so.
	AllowPrivateNetworks bool `koanf:"allow_private_networks"`
	// ShutdownGrace is how long in-flight deliveries may finish on shutdown.
	ShutdownGrace time.Duration `koanf:"shutdown_grace"`
	// RotationOverlap is how long an API subscription's old secret keeps
	// signing after rotate-secret.
	RotationOverlap time.Duration `koanf:"rotation_overlap"`
	// RequireHTTPS refuses http:// subscription URLs: in the config, at
	// the API, and at delivery for any stored before it was set.
	RequireHTTPS bool `koanf:"require_https"`
}

// Source is one upstream endpoint to poll.
type Source struct {
	Name    string            `koanf:"name"`
	URL     string            `koanf:"url"`
	Method  string            `koanf:"method"`
	Body    any               `koanf:"body"` // string sent as is; anything else as JSON
	Headers map[string]string `koanf:"headers"`
	Auth    *Auth             `koanf:"auth"`

	// Interval is the fixed polling interval. `interval: adaptive` (watch
	// sources only) sets MinInterval and MaxInterval instead (see
	// Adaptive) and leaves Interval as the interval used while a state
	// has too little history.
	Interval time.Duration `koanf:"interval"`
	// Schedule polls at the times a cron expression names instead of
	// every Interval (list sources).
	Schedule     *Schedule     `koanf:"schedule"`
	MinInterval  time.Duration `koanf:"min_interval"` // adaptive: no watch polled more often
	MaxInterval  time.Duration `koanf:"max_interval"` // adaptive: no watch polled less often
	Timeout      time.Duration `koanf:"timeout"`
	Rate         string        `koanf:"rate"` // "5/s", "300/m"; empty = unlimited
	Concurrency  int           `koanf:"concurrency"`
	MaxBackoff   time.Duration `koanf:"max_backoff"`
	MaxBodyBytes int64         `koanf:"max_body_bytes"`

	InsecureSkipVerify bool `koanf:"insecure_skip_verify"`

	Items  string `koanf:"items"`
	ID     string `koanf:"id"`
	State  string `koanf:"state"`
	Object string `koanf:"object"`

	Pagination *Pagination `koanf:"pagination"`
	// Incremental asks only for what changed since the last poll; see
	// Incremental.
	Incremental *Incremental `koanf:"incremental"`

	EmitExisting   bool    `koanf:"emit_existing"`
	Deletes        *bool   `koanf:"deletes"`
	Settle         int     `koanf:"settle"`
	MaxDeleteRatio float64 `koanf:"max_delete_ratio"`
	ConfirmPolls   int     `koanf:"confirm_polls"`

	Events []Rule `koanf:"events"`

	// Watch sources: the URL holds {id}; one request per watched id.
	Terminal  []any         `koanf:"terminal"`
	WatchTTL  time.Duration `koanf:"watch_ttl"`
	IDs       []string      `koanf:"ids"`
	WatchFrom string        `koanf:"watch_from"`
	// Progress and ETA (jq over each response, adaptive watch sources)
	// are what the upstream says of how far an item has come: a number
	// 0..1 or 0..100, and a time or seconds left. The schedule polls just
	// after the completion they predict.
	Progress string `koanf:"progress"`
	ETA      string `koanf:"eta"`
}

// Schedule is a source's `schedule:`: a cron expression and the time
// zone it is read in.
type Schedule struct {
	Cron     string `koanf:"cron"`
	Timezone string `koanf:"timezone"` // IANA name; empty is UTC
}

// Adaptive reports `interval: adaptive`: each watch's next poll comes from
// the learned durations of its state (poller/adaptive). Only an adaptive
// source has bounds: normalisation gives it a min_interval of at least 1s,
// and validation refuses one on any other source.
func (s *Source) Adaptive() bool { return s.MinInterval > 0 }

// RequestBody is Body as sent: a string as it is, anything else as
// canonical JSON; nil without a body.
func (s *Source) RequestBody() ([]byte, error) {
	switch b := s.Body.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(b), nil
	default:
		return event.Canonical(b)
	}
}

// IsWatch reports whether the source polls one URL per watched id.
func (s *Source) IsWatch() bool { return containsIDPlaceholder(s.URL) }

// DeletesEnabled reports whether items missing from a complete listing are
// deleted (default true).
func (s *Source) DeletesEnabled() bool { return s.Deletes == nil || *s.Deletes }

// Auth adds credentials to upstream requests; exactly one kind is set.
type Auth struct {
	Bearer string      `koanf:"bearer"`
	Basic  *BasicAuth  `koanf:"basic"`
	OAuth2 *OAuth2Auth `koanf:"oauth2"`
	Query  *QueryAuth  `koanf:"query"`
}

// OAuth2Auth fetches access tokens from an OAuth 2.0 token endpoint: the
// client-credentials grant, or the refresh-token grant when RefreshToken
// is set.
type OAuth2Auth struct {
	TokenURL     string   `koanf:"token_url"`
	ClientID     string   `koanf:"client_id"`
	ClientSecret string   `koanf:"client_secret"`
	Scopes       []string `koanf:"scopes"`
	RefreshToken string   `koanf:"refresh_token"`
}

// QueryAuth sends an API key as a query parameter.
type QueryAuth struct {
	Name  string `koanf:"name"`
	Value string `koanf:"value"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username string `koanf:"username"`
	Password string `koanf:"password"`
}

// Pagination selects one way of fetching further pages.
type Pagination struct {
	Next        string `koanf:"next"`  // jq: value sent back as query param Param
	Param       string `koanf:"param"` // query parameter for Next
	NextURL     string `koanf:"next_url"`
	LinkHeader  bool   `koanf:"link_header"`
	PageParam   string `koanf:"page_param"`
	OffsetParam string `koanf:"offset_param"`
	LimitParam  string `koanf:"limit_param"`
	Limit       int    `koanf:"limit"`
	MaxPages    int    `koanf:"max_pages"`
}

// Incremental is a list source's `incremental:`. Each poll but the first
// and one every FullEvery sends a watermark (query Param, or BodyField of
// a JSON body): the largest From over the items of the last complete
// poll, less Lookback, or the Cursor the last response gave. Items such a
// listing leaves out are unchanged, never deleted.
type Incremental struct {
	Param     string        `koanf:"param"`
	BodyField string        `koanf:"body_field"`
	From      string        `koanf:"from"`   // jq over each item: an RFC 3339 time or epoch seconds/ms
	Cursor    string        `koanf:"cursor"` // jq over each response: an opaque cursor
	Lookback  time.Duration `koanf:"lookback"`
	FullEvery time.Duration `koanf:"full_every"`
}

// DefaultFullEvery is incremental.full_every when the file sets none.
const DefaultFullEvery = time.Hour

// Rule turns a transition into an event when it matches.
type Rule struct {
	Type  string        `koanf:"type"`  // template: {source} {previous} {current}
	On    Kinds         `koanf:"on"`    // changed | created | deleted | stalled | member_*, or a list
	From  any           `koanf:"from"`  // value, list of values or glob; nil = any
	To    any           `koanf:"to"`    // likewise
	When  string        `koanf:"when"`  // jq over the event's data; truthy = fire
	State any           `koanf:"state"` // stalled: the state(s) watched
	After time.Duration `koanf:"after"` // stalled: how long before firing
	// Members is jq over the state yielding a list, for on: member_added
	// and member_removed: one event per element that joined or left it.
	Members string `koanf:"members"`
}

// Kinds is a rule's `on:`: one transition kind or a list of them, such as
// [created, changed] for an item that may first appear in its final state.
type Kinds []string

// Has reports whether kind is one of k.
func (k Kinds) Has(kind string) bool { return slices.Contains(k, kind) }

// Members reports whether k asks for member_added or member_removed events.
func (k Kinds) Members() bool { return k.Has("member_added") || k.Has("member_removed") }
