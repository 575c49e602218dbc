package api

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/glob"
	"github.com/pollrelay/pollrelay/internal/redact"
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
		ID: c.Name, Name: c.Name, URL: redact.Userinfo(c.URL), Method: c.Method, Events: c.Events,
		Signature: sigView{Scheme: c.SigScheme.Scheme, Header: c.SigScheme.Header, Encoding: c.SigScheme.Encoding},
		Headers:   redact.Headers(c.Headers), Payload: c.Payload, Timeout: c.Timeout.String(),
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
	err := s.opts.Store.View(func(t store.Txn) error {
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
	err := s.opts.Store.View(func(t store.Txn) error {
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
	// Tried before the lock: a payload may take its whole deadline.
	if !triedPayload(w, c) {
		return
	}
	if !s.lockSubs(w, r) {
		return
	}
	defer s.unlockSubs()
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
	rec := &store.SubscriptionRecord{ID: name, Spec: raw, Secrets: []store.StoredSecret{{Value: secret}}, CreatedAt: now, UpdatedAt: now, Version: 1}
	ok := s.commit(w, r, name, func(t store.Txn) error {
		if _, err := current(t, name, nil); !errors.Is(err, errSubGone) {
			return cmp.Or(err, errSubExists)
		}
		return t.PutAPISubscription(rec)
	})
	if !ok {
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
	if !s.lockSubs(w, r) {
		return
	}
	defer s.unlockSubs()
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
		next := *rec
		next.Spec, _ = json.Marshal(spec)
		next.UpdatedAt = s.opts.Now()
		ok := s.commit(w, r, id, func(t store.Txn) error {
			cur, err := current(t, id, rec)
			if err != nil {
				return err
			}
			next.Version = cur.Version + 1
			return t.PutAPISubscription(&next)
		})
		if !ok {
			return
		}
		c, rec = nc, &next
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
	if !s.lockSubs(w, r) {
		return
	}
	defer s.unlockSubs()
	_, _, ok := s.lookup(w, r, "remove it")
	if !ok {
		return
	}
	// Its health goes too, so a new subscription of the same name starts
	// afresh rather than disabled.
	ok = s.commit(w, r, id, func(t store.Txn) error {
		if _, err := current(t, id, nil); err != nil {
			return err
		}
		if err := t.DeleteSubState(id); err != nil {
			return err
		}
		return t.DeleteAPISubscription(id)
	})
	if !ok {
		return
	}
	if err := s.opts.Notifier.Forget(r.Context(), id); err != nil {
		s.internal(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rotateSecret makes a new secret the signing one; the old ones keep
// signing alongside it for the overlap, so receivers can switch without
// dropping a webhook.
func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.lockSubs(w, r) {
		return
	}
	defer s.unlockSubs()
	c, _, ok := s.lookup(w, r, "rotate its secret (a list of secrets signs with each)")
	if !ok {
		return
	}
	now := s.opts.Now()
	secret := signature.NewSecret()
	if c.SigScheme.Scheme == "standard" && len(c.Secrets) > 0 && strings.HasPrefix(c.Secrets[0], "whsk_") {
		secret, _ = signature.NewSigningKey()
	}
	var rec store.SubscriptionRecord
	ok = s.commit(w, r, id, func(t store.Txn) error {
		// The new list is built from the record as stored now, so every
		// rotation keeps the secrets of the ones before it.
		cur, err := current(t, id, nil)
		if err != nil {
			return err
		}
		rec = *cur
		rec.Secrets = rotated(cur.Secrets, secret, now, s.opts.RotationOverlap)
		rec.UpdatedAt, rec.Version = now, cur.Version+1
		return t.PutAPISubscription(&rec)
	})
	if !ok {
		return
	}
	v := s.view(c, "api", &rec)
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

// maxSigningSecrets bounds the secrets that sign at once. Each adds a
// signature to every webhook; 64 keep webhook-signature near 3 KiB, well
// inside the 8 KiB a header line may take at common proxies, however
// often secrets are rotated.
const maxSigningSecrets = 64

// rotated puts secret first; the older secrets keep signing until overlap
// after their first rotation, and those past it are dropped, as are the
// oldest beyond maxSigningSecrets.
func rotated(old []store.StoredSecret, secret string, now time.Time, overlap time.Duration) []store.StoredSecret {
	kept := []store.StoredSecret{{Value: secret}}
	for _, o := range old {
		if len(kept) == maxSigningSecrets {
			break
		}
		if o.ExpiresAt.IsZero() {
			o.ExpiresAt = now.Add(overlap)
		}
		if now.Before(o.ExpiresAt) {
			kept = append(kept, o)
		}
	}
	return kept
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

// replayRequest keeps the times raw, so an absent since is told apart
// from 0001-01-01T00:00:00Z, which is a time like any other.
type replayRequest struct {
	Since json.RawMessage `json:"since"`
	Until json.RawMessage `json:"until"`
	Types []string        `json:"types"`
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req replayRequest
	if !decode(w, r, &req) {
		return
	}
	since, hasSince, err := parseTime(req.Since)
	if err == nil && !hasSince {
		err = errors.New("required, " + timeExample)
	}
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "since: "+err.Error())
		return
	}
	until, hasUntil, err := parseTime(req.Until)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "until: "+err.Error())
		return
	}
	if !hasUntil {
		until = s.opts.Now()
	}
	if !until.After(since) {
		writeError(w, http.StatusUnprocessableEntity, "until: must be after since")
		return
	}
	for i, g := range req.Types {
		if !glob.Valid(g) {
			writeError(w, http.StatusUnprocessableEntity, "types["+itoa(i)+"]: bad glob "+quote(g))
			return
		}
	}
	n, err := s.opts.Notifier.Replay(r.Context(), id, since, until, req.Types)
	switch {
	case errors.Is(err, notifier.ErrNotFound):
		writeError(w, http.StatusNotFound, "no subscription "+quote(id))
	case err != nil:
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusAccepted, map[string]int{"replayed": n})
	}
}

// parseTime reads an optional JSON time: absent or null is not set.
func parseTime(raw json.RawMessage) (time.Time, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return time.Time{}, false, errors.New("must be " + timeExample)
	}
	t, err := time.Parse(time.RFC3339Nano, str)
	if err != nil {
		return time.Time{}, false, errors.New("must be " + timeExample)
	}
	return t, true, nil
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
