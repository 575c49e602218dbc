package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/notifier"
	"github.com/pollrelay/pollrelay/signature"
	"github.com/pollrelay/pollrelay/store"
)

// subscriptionView is a subscription as the API shows it. The secret is
// only ever set in the answer to create and rotate-secret.
type subscriptionView struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	URL          string            `json:"url"`
	Method       string            `json:"method"`
	Events       []string          `json:"events"`
	Signature    sigView           `json:"signature"`
	Headers      map[string]string `json:"headers,omitempty"`
	Payload      string            `json:"payload,omitempty"`
	Timeout      string            `json:"timeout"`
	Retry        []string          `json:"retry_schedule"`
	Ordering     string            `json:"ordering"`
	MaxInFlight  int               `json:"max_in_flight"`
	DisableAfter string            `json:"disable_after,omitempty"`
	ManagedBy    string            `json:"managed_by"`
	CreatedAt    time.Time         `json:"created_at,omitzero"`
	UpdatedAt    time.Time         `json:"updated_at,omitzero"`
	Secret       string            `json:"secret,omitempty"`
	notifier.SubscriptionStats
}

type sigView struct {
	Scheme   string `json:"scheme"`
	Header   string `json:"header,omitempty"`
	Encoding string `json:"encoding,omitempty"`
}

func (s *Server) view(c *config.Subscription, managedBy string, rec *store.SubscriptionRecord) subscriptionView {
	v := subscriptionView{
		ID: c.Name, Name: c.Name, URL: redactUserinfo(c.URL), Method: c.Method, Events: c.Events,
		Signature: sigView{Scheme: c.SigScheme.Scheme, Header: c.SigScheme.Header, Encoding: c.SigScheme.Encoding},
		Headers:   redactHeaders(c.Headers), Payload: c.Payload, Timeout: c.Timeout.String(),
		Ordering: c.Ordering, MaxInFlight: c.MaxInFlight, ManagedBy: managedBy,
	}
	if v.Events == nil {
		v.Events = []string{}
	}
	for _, d := range c.Retry.Schedule {
		v.Retry = append(v.Retry, d.String())
	}
	if c.DisableAfter > 0 {
		v.DisableAfter = c.DisableAfter.String()
	}
	if rec != nil {
		v.CreatedAt, v.UpdatedAt = rec.CreatedAt, rec.UpdatedAt
	}
	if st, ok := s.opts.Notifier.Stats(c.Name); ok {
		v.SubscriptionStats = st
	}
	return v
}

// redactUserinfo hides a password in a URL: it is a credential, not part
// of where webhooks go.
func redactUserinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	return u.String()
}

// redactHeaders hides the values of headers that usually carry credentials
// for the receiving app.
func redactHeaders(h map[string]string) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		lk := strings.ToLower(k)
		if lk == "authorization" || lk == "cookie" || strings.Contains(lk, "token") ||
			strings.Contains(lk, "secret") || strings.Contains(lk, "key") || strings.Contains(lk, "signature") {
			v = "redacted"
		}
		out[k] = v
	}
	return out
}

// apiSubscription is a stored API subscription, parsed.
type apiSubscription struct {
	rec *store.SubscriptionRecord
	cfg *config.Subscription
}

// APISubscriptionConfig turns a stored API subscription into the config
// form the notifier is built from, signing with its active secrets.
func APISubscriptionConfig(rec *store.SubscriptionRecord, now time.Time) (*config.Subscription, error) {
	var spec map[string]any
	if err := json.Unmarshal(rec.Spec, &spec); err != nil {
		return nil, err
	}
	secrets := rec.Active(now)
	list := make([]any, len(secrets))
	for i, s := range secrets {
		list[i] = s
	}
	spec["secret"] = list
	spec["name"] = rec.ID
	return config.ParseSubscription(spec)
}

func (s *Server) loadAPISubs() ([]apiSubscription, error) {
	var out []apiSubscription
	now := s.opts.Now()
	err := s.opts.Store.View(func(t *store.Txn) error {
		return t.APISubscriptions(func(r *store.SubscriptionRecord) error {
			c, err := APISubscriptionConfig(r, now)
			if err != nil {
				return err
			}
			out = append(out, apiSubscription{rec: r, cfg: c})
			return nil
		})
	})
	slices.SortFunc(out, func(a, b apiSubscription) int { return b.rec.CreatedAt.Compare(a.rec.CreatedAt) })
	return out, err
}

// find returns a subscription by id: from the config, or from the store.
func (s *Server) find(id string) (*config.Subscription, *store.SubscriptionRecord, error) {
	cfg := s.opts.Control.Config()
	for i := range cfg.Subscriptions {
		if cfg.Subscriptions[i].Name == id {
			return &cfg.Subscriptions[i], nil, nil
		}
	}
	var rec *store.SubscriptionRecord
	err := s.opts.Store.View(func(t *store.Txn) error {
		var err error
		rec, err = t.APISubscription(id)
		return err
	})
	if err != nil || rec == nil {
		return nil, nil, err
	}
	c, err := APISubscriptionConfig(rec, s.opts.Now())
	return c, rec, err
}

// lookup finds the subscription named in the path, answering 500 or 404
// itself. With a non-empty change, a config subscription is a 409 that
// tells the user to make that change in the config file.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, change string) (*config.Subscription, *store.SubscriptionRecord, bool) {
	id := r.PathValue("id")
	c, rec, err := s.find(id)
	switch {
	case err != nil:
		s.internal(w, r, err)
	case c == nil:
		writeError(w, http.StatusNotFound, "no subscription "+quote(id))
	case change != "" && rec == nil:
		configOwned(w, id, change)
	default:
		return c, rec, true
	}
	return nil, nil, false
}

// apply writes an API subscription change and rebuilds the notifier's
// subscriptions from it; it answers 500 itself when either fails.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, write func(*store.Txn) error) bool {
	if err := s.opts.Store.Update(write); err != nil {
		s.internal(w, r, err)
		return false
	}
	if err := s.opts.Control.SubscriptionsChanged(); err != nil {
		s.internal(w, r, err)
		return false
	}
	return true
}

// configOwned answers 409 for a change to a config subscription.
func configOwned(w http.ResponseWriter, id, change string) {
	writeError(w, http.StatusConflict, "subscription "+quote(id)+" is managed by the config file; "+change+" there")
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	subs, err := s.loadAPISubs()
	if err != nil {
		s.internal(w, r, err)
		return
	}
	var all []subscriptionView
	for _, a := range subs {
		all = append(all, s.view(a.cfg, "api", a.rec))
	}
	cfg := s.opts.Control.Config()
	for i := range cfg.Subscriptions {
		all = append(all, s.view(&cfg.Subscriptions[i], "config", nil))
	}
	page(w, r, all)
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) {
	c, rec, ok := s.lookup(w, r, "")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.view(c, managedBy(rec), rec))
}

func managedBy(rec *store.SubscriptionRecord) string {
	if rec == nil {
		return "config"
	}
	return "api"
}

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) {
	var spec map[string]any
	if !decode(w, r, &spec) {
		return
	}
	if _, has := spec["disabled"]; has {
		writeError(w, http.StatusUnprocessableEntity, "disabled: set it with PATCH after creating the subscription")
		return
	}
	secret, _ := spec["secret"].(string)
	if _, has := spec["secret"]; has && secret == "" {
		writeError(w, http.StatusUnprocessableEntity, "secret: must be a non-empty string (or leave it out to have one generated)")
		return
	}
	if secret == "" {
		secret = signature.NewSecret()
	}
	delete(spec, "secret")
	name, _ := spec["name"].(string)
	check := cloneSpec(spec)
	check["secret"] = secret
	c, err := config.ParseSubscription(check)
	if err != nil {
		invalid(w, err)
		return
	}
	if !triedPayload(w, c) {
		return
	}
	if existing, _, err := s.find(name); err != nil {
		s.internal(w, r, err)
		return
	} else if existing != nil {
		writeError(w, http.StatusConflict, "name: a subscription named "+quote(name)+" exists")
		return
	}
	if err := s.checkTarget(c.URL); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "url: "+err.Error())
		return
	}
	now := s.opts.Now()
	raw, _ := json.Marshal(spec)
	rec := &store.SubscriptionRecord{ID: name, Spec: raw, Secrets: []store.StoredSecret{{Value: secret}}, CreatedAt: now, UpdatedAt: now}
	if !s.apply(w, r, func(t *store.Txn) error { return t.PutAPISubscription(rec) }) {
		return
	}
	v := s.view(c, "api", rec)
	v.Secret = secret
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) patchSubscription(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var patch map[string]any
	if !decode(w, r, &patch) {
		return
	}
	c, rec, ok := s.lookup(w, r, "")
	if !ok {
		return
	}
	disabled, hasDisabled := patch["disabled"]
	delete(patch, "disabled")
	if hasDisabled {
		if _, ok := disabled.(bool); !ok {
			writeError(w, http.StatusUnprocessableEntity, "disabled: must be true or false")
			return
		}
	}
	if rec == nil && len(patch) > 0 {
		configOwned(w, id, "change it (only disabled can be set here)")
		return
	}
	if _, has := patch["secret"]; has {
		writeError(w, http.StatusUnprocessableEntity, "secret: use POST /v1/subscriptions/{id}/rotate-secret")
		return
	}
	if n, has := patch["name"]; has && n != id {
		writeError(w, http.StatusUnprocessableEntity, "name: cannot be changed; create a new subscription")
		return
	}
	if rec != nil && len(patch) > 0 {
		var spec map[string]any
		if err := json.Unmarshal(rec.Spec, &spec); err != nil {
			s.internal(w, r, err)
			return
		}
		for k, v := range patch {
			if v == nil {
				delete(spec, k)
			} else {
				spec[k] = v
			}
		}
		check := cloneSpec(spec)
		check["secret"] = rec.Active(s.opts.Now())
		nc, err := config.ParseSubscription(anySecrets(check))
		if err != nil {
			invalid(w, err)
			return
		}
		if _, changed := patch["payload"]; changed && !triedPayload(w, nc) {
			return
		}
		if err := s.checkTarget(nc.URL); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "url: "+err.Error())
			return
		}
		rec.Spec, _ = json.Marshal(spec)
		rec.UpdatedAt = s.opts.Now()
		if !s.apply(w, r, func(t *store.Txn) error { return t.PutAPISubscription(rec) }) {
			return
		}
		c = nc
	}
	if hasDisabled {
		if err := s.opts.Notifier.SetDisabled(r.Context(), id, disabled.(bool)); err != nil {
			s.internal(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, s.view(c, managedBy(rec), rec))
}

func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, _, ok := s.lookup(w, r, "remove it")
	if !ok {
		return
	}
	// Its health goes too, so a new subscription of the same name starts
	// afresh rather than disabled.
	ok = s.apply(w, r, func(t *store.Txn) error {
		if err := t.DeleteSubState(id); err != nil {
			return err
		}
		return t.DeleteAPISubscription(id)
	})
	if !ok {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rotateSecret makes a new secret the signing one; the old ones keep
// signing alongside it for the overlap, so receivers can switch without
// dropping a webhook.
func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) {
	c, rec, ok := s.lookup(w, r, "rotate its secret (a list of secrets signs with each)")
	if !ok {
		return
	}
	now := s.opts.Now()
	secret := signature.NewSecret()
	if c.SigScheme.Scheme == "standard" && len(c.Secrets) > 0 && strings.HasPrefix(c.Secrets[0], "whsk_") {
		secret, _ = signature.NewSigningKey()
	}
	kept := []store.StoredSecret{{Value: secret}}
	for _, old := range rec.Secrets {
		if old.ExpiresAt.IsZero() {
			old.ExpiresAt = now.Add(s.opts.RotationOverlap)
		}
		if now.Before(old.ExpiresAt) {
			kept = append(kept, old)
		}
	}
	rec.Secrets, rec.UpdatedAt = kept, now
	if !s.apply(w, r, func(t *store.Txn) error { return t.PutAPISubscription(rec) }) {
		return
	}
	v := s.view(c, "api", rec)
	v.Secret = secret
	if strings.HasPrefix(secret, "whsk_") {
		v.Secret, _ = signature.PublicKey(secret)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"subscription":      v,
		"secret":            v.Secret,
		"old_secrets_until": now.Add(s.opts.RotationOverlap),
	})
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	eid, err := s.opts.Notifier.Ping(r.Context(), id)
	switch {
	case errors.Is(err, notifier.ErrNotFound):
		writeError(w, http.StatusNotFound, "no subscription "+quote(id))
	case err != nil:
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusAccepted, map[string]string{"event_id": eid, "type": "pollrelay.ping"})
	}
}

type replayRequest struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	Types []string  `json:"types"`
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req replayRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Since.IsZero() {
		writeError(w, http.StatusUnprocessableEntity, "since: required, an RFC 3339 time")
		return
	}
	if req.Until.IsZero() {
		req.Until = s.opts.Now()
	}
	if !req.Until.After(req.Since) {
		writeError(w, http.StatusUnprocessableEntity, "until: must be after since")
		return
	}
	for i, g := range req.Types {
		if !validGlob(g) {
			writeError(w, http.StatusUnprocessableEntity, "types["+itoa(i)+"]: bad glob "+quote(g))
			return
		}
	}
	n, err := s.opts.Notifier.Replay(r.Context(), id, req.Since, req.Until, req.Types)
	switch {
	case errors.Is(err, notifier.ErrNotFound):
		writeError(w, http.StatusNotFound, "no subscription "+quote(id))
	case err != nil:
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusAccepted, map[string]int{"replayed": n})
	}
}

func cloneSpec(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func anySecrets(m map[string]any) map[string]any {
	if l, ok := m["secret"].([]string); ok {
		a := make([]any, len(l))
		for i, s := range l {
			a[i] = s
		}
		m["secret"] = a
	}
	return m
}

// triedPayload runs the subscription's payload program over sample
// envelopes within its limits and answers 422 when it fails: an API client
// is not trusted to send a program that terminates.
func triedPayload(w http.ResponseWriter, c *config.Subscription) bool {
	if err := config.TryPayload(c.PayloadExpr); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "payload: "+err.Error())
		return false
	}
	return true
}

// invalid answers 422 with the first problem; the rest follow in
// "problems" so a client can show them all.
func invalid(w http.ResponseWriter, err error) {
	var ve *config.ValidationError
	if errors.As(err, &ve) && len(ve.Problems) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": ve.Problems[0], "problems": ve.Problems})
		return
	}
	writeError(w, http.StatusUnprocessableEntity, err.Error())
}
