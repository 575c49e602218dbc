package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/glob"
	"github.com/pollrelay/pollrelay/internal/check"
	"github.com/pollrelay/pollrelay/notifier"
	"github.com/pollrelay/pollrelay/signature"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/subscription"
)

// lookup finds the subscription named in the path, answering 404 itself.
// With a non-empty change, a config subscription is a 409 that tells the
// user to make that change in the config file.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, change string) (*subscription.Subscription, bool) {
	id := r.PathValue("id")
	sub := s.opts.Subscriptions.Get(id)
	switch {
	case sub == nil:
		writeError(w, http.StatusNotFound, "no subscription "+quote(id))
	case change != "" && sub.Record == nil:
		configOwned(w, id, change)
	default:
		return sub, true
	}
	return nil, false
}

// configOwned answers 409 for a change to a config subscription.
func configOwned(w http.ResponseWriter, id, change string) {
	writeError(w, http.StatusConflict, "subscription "+quote(id)+" is managed by the config file; "+change+" there")
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	var all []subscriptionView
	for _, sub := range s.opts.Subscriptions.List() {
		all = append(all, s.view(sub))
	}
	page(w, r, all)
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) {
	sub, ok := s.lookup(w, r, "")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.view(sub))
}

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if !decode(w, r, &body) {
		return
	}
	if _, has := body["disabled"]; has {
		writeError(w, http.StatusUnprocessableEntity, "disabled: set it with PATCH after creating the subscription")
		return
	}
	secret, _ := body["secret"].(string)
	if _, has := body["secret"]; has && secret == "" {
		writeError(w, http.StatusUnprocessableEntity, "secret: must be a non-empty string (or leave it out to have one generated)")
		return
	}
	if secret == "" {
		secret = signature.NewSecret()
	}
	sub, err := s.CreateSubscription(r.Context(), body, secret, nil)
	var inv *InvalidError
	switch {
	case err == nil:
	case errors.As(err, &inv) && inv.parse != nil:
		invalid(w, inv.parse)
		return
	case errors.As(err, &inv):
		writeError(w, http.StatusUnprocessableEntity, inv.Error())
		return
	case errors.Is(err, errSubsBusy):
		writeError(w, http.StatusServiceUnavailable, errSubsBusy.Error())
		return
	default:
		name, _ := body["name"].(string)
		s.answered(w, r, name, err)
		return
	}
	v := s.view(sub)
	v.secret = secret
	writeJSON(w, http.StatusCreated, v)
}

// patchSubscription changes the keys a body sets, null removing one. A
// body may be a GET answer sent back: its read-only keys are ignored, its
// hidden credentials stand for the stored ones, and the keys it does not
// change are no change, so a config subscription takes it too.
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
	cur, ok := s.lookup(w, r, "")
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
	if v, has := patch["id"]; has && v != id {
		writeError(w, http.StatusUnprocessableEntity, "id: cannot be changed; create a new subscription")
		return
	}
	delete(patch, "id")
	change, err := changes(cur, patch)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if cur.Record == nil && len(change) > 0 {
		configOwned(w, id, "change it (only disabled can be set here)")
		return
	}
	if _, has := change["secret"]; has {
		writeError(w, http.StatusUnprocessableEntity, "secret: use POST /v1/subscriptions/{id}/rotate-secret")
		return
	}
	if _, has := change["name"]; has {
		writeError(w, http.StatusUnprocessableEntity, "name: cannot be changed; create a new subscription")
		return
	}
	if len(change) > 0 {
		if cur, ok = s.patched(w, r, cur, change); !ok {
			return
		}
	}
	if hasDisabled {
		if err := s.opts.Notifier.SetDisabled(r.Context(), id, disabled.(bool)); err != nil {
			s.internal(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, s.view(cur))
}

// patched validates cur with the changed keys and stores it, answering a
// failure itself. A change that normalises to what is stored (a method in
// lower case) writes nothing.
func (s *Server) patched(w http.ResponseWriter, r *http.Request, cur *subscription.Subscription, change map[string]any) (*subscription.Subscription, bool) {
	tree, err := specTree(cur.Spec)
	if err != nil {
		s.internal(w, r, err)
		return nil, false
	}
	for k, v := range change {
		if v == nil {
			delete(tree, k)
		} else {
			tree[k] = v
		}
	}
	now := s.opts.Now()
	next, err := subscription.Parse(tree, cur.Secrets(now))
	if err != nil {
		invalid(w, err)
		return nil, false
	}
	if _, changed := change["payload"]; changed && !triedPayload(w, &next.Spec) {
		return nil, false
	}
	if err := s.checkTarget(next.Spec.URL); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "url: "+err.Error())
		return nil, false
	}
	raw, err := next.Spec.MarshalJSON()
	if err == nil {
		var was []byte
		if was, err = cur.Spec.MarshalJSON(); err == nil && bytes.Equal(raw, was) {
			return cur, true
		}
	}
	if err != nil {
		s.internal(w, r, err)
		return nil, false
	}
	rec := *cur.Record
	rec.Spec, rec.UpdatedAt = raw, now
	next = next.WithRecord(&rec)
	ok := s.commit(w, r, cur.ID(), func(t store.Txn) error {
		stored, err := current(t, cur.ID(), cur.Record)
		if err != nil {
			return err
		}
		rec.Version = stored.Version + 1
		return t.PutAPISubscription(&rec)
	}, func() { s.opts.Subscriptions.Put(next) })
	return next, ok
}

func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.lockSubs(w, r) {
		return
	}
	defer s.unlockSubs()
	if _, ok := s.lookup(w, r, "remove it"); !ok {
		return
	}
	ok := s.commit(w, r, id, removeRecord(id), func() { s.opts.Subscriptions.Remove(id) })
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
	cur, ok := s.lookup(w, r, "rotate its secret (a list of secrets signs with each)")
	if !ok {
		return
	}
	now := s.opts.Now()
	secret := signature.NewSecret()
	if active := cur.Secrets(now); cur.Spec.Scheme().Name == signature.SchemeStandard &&
		len(active) > 0 && strings.HasPrefix(active[0], signature.PrefixSigningKey) {
		secret, _ = signature.NewSigningKey()
	}
	var rec store.SubscriptionRecord
	next := cur.WithRecord(&rec)
	ok = s.commit(w, r, id, func(t store.Txn) error {
		// The new list is built from the record as stored now, so every
		// rotation keeps the secrets of the ones before it.
		stored, err := current(t, id, nil)
		if err != nil {
			return err
		}
		rec = *stored
		rec.Secrets = rotated(stored.Secrets, secret, now, s.opts.RotationOverlap)
		rec.UpdatedAt, rec.Version = now, stored.Version+1
		return t.PutAPISubscription(&rec)
	}, func() { s.opts.Subscriptions.Put(next) })
	if !ok {
		return
	}
	v := s.view(next)
	v.secret = secret
	if strings.HasPrefix(secret, signature.PrefixSigningKey) {
		v.secret, _ = signature.PublicKey(secret)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"subscription":      v,
		"secret":            v.secret,
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

// triedPayload runs the subscription's payload program over sample
// envelopes within its limits and answers 422 when it fails: an API client
// is not trusted to send a program that terminates.
func triedPayload(w http.ResponseWriter, spec *subscription.Spec) bool {
	if err := spec.TryPayload(); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "payload: "+err.Error())
		return false
	}
	return true
}

// invalid answers 422 with the first problem; the rest follow in
// "problems" so a client can show them all.
func invalid(w http.ResponseWriter, err error) {
	var ve *check.ValidationError
	if errors.As(err, &ve) && len(ve.Problems) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": ve.Problems[0], "problems": ve.Problems})
		return
	}
	writeError(w, http.StatusUnprocessableEntity, err.Error())
}
