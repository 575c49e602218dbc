// Package compat serves vendor-shaped management APIs (compat: in the
// config): a vendor's paths, auth, field names, status codes, wrappers and
// error texts, so an app that manages its webhooks through the vendor's
// API can point that code at pollrelay. What a facade creates is an
// ordinary API subscription, visible in /v1 as <vendor>-<id>, whose
// delivery (payload, signature, retry, timeout) comes from a template
// subscription in the config file.
package compat

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pollrelay/pollrelay/api"
	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/internal/check"
	"github.com/pollrelay/pollrelay/notifier"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/subscription"
)

// Subscriptions is what a facade needs of the management API (api.Server
// has it): /v1's own changes, so a facade's subscription is validated,
// stored and delivered to as any other.
type Subscriptions interface {
	CreateSubscription(ctx context.Context, body map[string]any, secret string, compat json.RawMessage) (*subscription.Subscription, error)
	ReplaceSubscription(ctx context.Context, base *store.SubscriptionRecord, body map[string]any, compat json.RawMessage) (*subscription.Subscription, error)
	RemoveSubscription(ctx context.Context, id string) error
	SetSubscriptionDisabled(ctx context.Context, id string, disabled bool) error
	SubscriptionStats(id string) notifier.SubscriptionStats
	NextSequence(ctx context.Context, name string) (uint64, error)
}

// Registry is where a facade reads subscriptions: its own, and its
// template.
type Registry interface {
	Get(id string) *subscription.Subscription
	List() []*subscription.Subscription
}

// Options are a facade's dependencies.
type Options struct {
	Config   config.Compat
	API      Subscriptions
	Registry Registry
	Logger   *slog.Logger
	Now      func() time.Time
}

// Facade is one vendor's management API.
type Facade struct {
	o    Options
	key  [32]byte // SHA-256 of api_key
	mux  *http.ServeMux
	pats []string
	// one orders Glossi's PUT and DELETE, so two racing PUTs of a key
	// make one webhook, not two.
	one sync.Mutex
}

// maxBody caps a request body, as /v1 does.
const maxBody = 1 << 20

// New builds the facade of o.Config.Vendor.
func New(o Options) (*Facade, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	f := &Facade{o: o, key: sha256.Sum256([]byte(o.Config.APIKey)), mux: http.NewServeMux()}
	switch o.Config.Vendor {
	case config.VendorDAM:
		f.routesDAM()
	case config.VendorGlossi:
		f.routesGlossi()
	case config.VendorGumlet:
		f.routesGumlet()
	default:
		return nil, fmt.Errorf("compat: no facade for vendor %q", o.Config.Vendor)
	}
	return f, nil
}

// Patterns are the ServeMux patterns the facade answers, for a server
// that mounts it beside /v1.
func (f *Facade) Patterns() []string { return f.pats }

// ServeHTTP implements http.Handler.
func (f *Facade) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

// handle registers pattern; a wrong method is the vendor-neutral 405.
func (f *Facade) handle(pattern string, handlers map[string]http.HandlerFunc) {
	f.pats = append(f.pats, pattern)
	var allowed []string
	for m := range handlers {
		allowed = append(allowed, m)
	}
	slices.Sort(allowed)
	allow := strings.Join(allowed, ", ")
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		h, ok := handlers[r.Method]
		if !ok {
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed; use " + allow})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h(w, r)
	})
}

// keyOK compares a presented key with api_key in constant time: both are
// hashed first, so not even the key's length leaks.
func (f *Facade) keyOK(got string) bool {
	sum := sha256.Sum256([]byte(got))
	return got != "" && subtle.ConstantTimeCompare(sum[:], f.key[:]) == 1
}

// record is what a facade keeps of a subscription beyond its spec, in
// store.SubscriptionRecord.Compat.
type record struct {
	Vendor string `json:"vendor"`
	ID     uint64 `json:"id"`
	// DAM
	Name      string  `json:"name,omitempty"`
	ProjectID *string `json:"project_id,omitempty"`
	// Gumlet
	Triggers []string `json:"triggers,omitempty"`
	// Glossi
	UUID        string   `json:"uuid,omitempty"`
	Description string   `json:"description,omitempty"`
	Sources     []string `json:"sources,omitempty"`
}

// owned is a subscription a facade created, with its record.
type owned struct {
	sub *subscription.Subscription
	rec record
}

// mine lists the subscriptions this facade's vendor created, oldest id
// first.
func (f *Facade) mine() []owned {
	var out []owned
	for _, s := range f.o.Registry.List() {
		if s.Record == nil || len(s.Record.Compat) == 0 {
			continue
		}
		var rec record
		if err := json.Unmarshal(s.Record.Compat, &rec); err != nil || rec.Vendor != f.o.Config.Vendor {
			continue
		}
		out = append(out, owned{s, rec})
	}
	slices.SortFunc(out, func(a, b owned) int { return cmp.Compare(a.rec.ID, b.rec.ID) })
	return out
}

// byID finds the facade's subscription of a vendor id given in a path.
func (f *Facade) byID(raw string) (owned, bool) {
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		return owned{}, false
	}
	for _, o := range f.mine() {
		if o.rec.ID == id {
			return o, true
		}
	}
	return owned{}, false
}

// create stores a new subscription of this facade under the next id of
// its vendor's store sequence, named <vendor>-<id> in /v1. A name taken
// already (a /v1 subscription someone called dam-7) skips to the next id.
func (f *Facade) create(ctx context.Context, body map[string]any, secret string, rec record) (*subscription.Subscription, record, error) {
	for tries := 0; ; tries++ {
		n, err := f.o.API.NextSequence(ctx, "compat/"+f.o.Config.Vendor)
		if err != nil {
			return nil, rec, err
		}
		rec.Vendor, rec.ID = f.o.Config.Vendor, n
		body["name"] = f.o.Config.Vendor + "-" + strconv.FormatUint(n, 10)
		sub, err := f.o.API.CreateSubscription(ctx, body, secret, mustJSON(rec))
		if errors.Is(err, api.ErrSubscriptionExists) && tries < maxNameTries {
			continue
		}
		return sub, rec, err
	}
}

// maxNameTries bounds the ids create skips over names taken.
const maxNameTries = 100

// template returns the template subscription and its spec as a /v1 body
// without the keys a facade sets. A template gone since the config was
// validated (a reload) is an error the facade answers 500 to.
func (f *Facade) template() (*subscription.Subscription, map[string]any, error) {
	t := f.o.Registry.Get(f.o.Config.Template)
	if t == nil || !t.Spec.Template {
		return nil, nil, fmt.Errorf("compat %s: template subscription %q is not in the config", f.o.Config.Vendor, f.o.Config.Template)
	}
	raw, err := t.Spec.MarshalJSON()
	if err != nil {
		return nil, nil, fmt.Errorf("compat %s: encode template: %w", f.o.Config.Vendor, err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, nil, fmt.Errorf("compat %s: decode template: %w", f.o.Config.Vendor, err)
	}
	for _, k := range []string{"name", "url", "events", "template"} {
		delete(body, k)
	}
	return t, body, nil
}

// signedLikeTemplate is template's body with the template's newest
// secret, which DAM's and Gumlet's webhooks sign with: their APIs carry
// none.
func (f *Facade) signedLikeTemplate() (map[string]any, string, error) {
	t, body, err := f.template()
	if err != nil {
		return nil, "", err
	}
	secrets := t.Secrets(f.o.Now())
	if len(secrets) == 0 {
		return nil, "", fmt.Errorf("compat %s: template %q has no secret", f.o.Config.Vendor, t.ID())
	}
	return body, secrets[0], nil
}

// internal answers 500 for what the caller can't fix, logging it.
func (f *Facade) internal(w http.ResponseWriter, r *http.Request, err error) {
	f.o.Logger.Error("compat request failed", "vendor", f.o.Config.Vendor, "method", r.Method, "path", r.URL.Path, "error", err.Error())
	writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "Internal Server Error"})
}

// writeJSON answers v as compact JSON in the form a JavaScript client's
// JSON.stringify would give back.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := event.Canonical(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// readObject reads a JSON object body. Unknown keys are the caller's to
// ignore, as the vendors' APIs do. A body over maxBody is a
// *http.MaxBytesError; see tooBig.
func readObject(r *http.Request) (map[string]any, error) {
	var body map[string]any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	err := dec.Decode(&body)
	if err == nil {
		if _, after := dec.Token(); after != io.EOF {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		return nil, errors.New("the body is empty; send a JSON object")
	case err != nil:
		return nil, err
	case body == nil:
		return nil, errors.New("the body must be a JSON object")
	}
	return body, nil
}

// millis is a time as the vendors show it: UTC to the millisecond.
func millis(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// anyList is a list of strings as a JSON tree holds it.
func anyList(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

// mustJSON encodes a record, which always encodes.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("compat: encode %T: %v", v, err))
	}
	return b
}

// checkURL reports whether raw is a URL a subscription may deliver to.
func checkURL(raw string) error {
	p := &check.Problems{}
	check.URL(p, "url", raw)
	return p.Err()
}

// tooBig answers 413 for a body over maxBody, as /v1 does.
func tooBig(w http.ResponseWriter, err error) bool {
	var mb *http.MaxBytesError
	if !errors.As(err, &mb) {
		return false
	}
	writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("request body larger than %d bytes", mb.Limit)})
	return true
}

// asciiUpper is s in upper case when it is ASCII: "poſt" is not POST.
func asciiUpper(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return "", false
		}
	}
	return strings.ToUpper(s), true
}

// specBody is a subscription's stored spec as a /v1 body, for a change
// that keeps what it does not set.
func specBody(sub *subscription.Subscription) (map[string]any, error) {
	raw, err := sub.Spec.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode subscription %s: %w", sub.ID(), err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("decode subscription %s: %w", sub.ID(), err)
	}
	return body, nil
}

// writeError answers the one-line {"error": …} all three vendors use.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// keyIn checks the API key a vendor sends in header, answering 401 with
// refusal (the vendors document no body for it; this one is pollrelay's).
func (f *Facade) keyIn(header, refusal string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !f.keyOK(r.Header.Get(header)) {
			writeError(w, http.StatusUnauthorized, refusal)
			return
		}
		h(w, r)
	}
}

// listAs answers {"webhooks": [...]} with this facade's webhooks as view
// shows each.
func listAs[T any](f *Facade, w http.ResponseWriter, view func(owned) T) {
	out := []T{}
	for _, o := range f.mine() {
		out = append(out, view(o))
	}
	writeJSON(w, http.StatusOK, map[string][]T{"webhooks": out})
}

// found is the webhook of the path's {id}, or a 404 answered.
func (f *Facade) found(w http.ResponseWriter, r *http.Request) (owned, bool) {
	o, ok := f.byID(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "webhook not found")
	}
	return o, ok
}
