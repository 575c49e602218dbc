package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pollrelay/pollrelay/internal/check"
	"github.com/pollrelay/pollrelay/notifier"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/subscription"
)

// The subscription changes below are /v1's, for the vendor-shaped APIs
// (compat), which answer in their vendor's words: the same validation,
// the same lock, the same store write and the same rebuild of the
// notifier's set, so a facade's subscription is an ordinary API one.

// Errors of those changes, for errors.Is.
var (
	// ErrSubscriptionGone: the subscription is not stored (any more).
	ErrSubscriptionGone = errSubGone
	// ErrSubscriptionExists: the name is taken.
	ErrSubscriptionExists = errSubExists
	// ErrSubscriptionChanged: another change was stored since it was read.
	ErrSubscriptionChanged = errSubMoved
)

// InvalidError is a spec that does not validate: its first problem, as
// /v1's 422 names it.
type InvalidError struct {
	Key     string // the first problem's key ("url", "payload", …)
	Message string
	// parse is the spec's validation error, every problem of it, which
	// /v1's 422 lists; nil for a payload or url refused after it.
	parse error
}

func (e *InvalidError) Error() string { return e.Key + ": " + e.Message }

func (e *InvalidError) Unwrap() error { return e.parse }

// CreateSubscription stores a new API subscription from body (a /v1
// body), signing with secret, carrying compat in its record.
func (s *Server) CreateSubscription(ctx context.Context, body map[string]any, secret string, compat json.RawMessage) (*subscription.Subscription, error) {
	sub, err := subscription.Parse(body, []string{secret})
	if err != nil {
		return nil, invalidError(err)
	}
	if err := sub.Spec.TryPayload(); err != nil {
		return nil, &InvalidError{Key: "payload", Message: err.Error()}
	}
	if err := s.acquireSubs(ctx); err != nil {
		return nil, err
	}
	defer s.unlockSubs()
	id := sub.ID()
	if s.opts.Subscriptions.Get(id) != nil {
		return nil, errSubExists
	}
	if err := s.checkTarget(sub.Spec.URL); err != nil {
		return nil, &InvalidError{Key: "url", Message: err.Error()}
	}
	raw, err := sub.Spec.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode subscription %s: %w", id, err)
	}
	now := s.opts.Now()
	sub = sub.WithRecord(&store.SubscriptionRecord{
		ID: id, Spec: raw, Secrets: []store.StoredSecret{{Value: secret}},
		CreatedAt: now, UpdatedAt: now, Version: 1, Compat: compat,
	})
	err = s.apply(func(t store.Txn) error {
		if _, err := current(t, id, nil); !errors.Is(err, errSubGone) {
			if err == nil {
				err = errSubExists
			}
			return err
		}
		return t.PutAPISubscription(sub.Record)
	}, func() { s.opts.Subscriptions.Put(sub) })
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// ReplaceSubscription stores body as the whole spec of the API
// subscription id, keeping its secrets, with compat in its record. base
// is the record the change was computed from: a change stored since is
// ErrSubscriptionChanged.
func (s *Server) ReplaceSubscription(ctx context.Context, base *store.SubscriptionRecord, body map[string]any, compat json.RawMessage) (*subscription.Subscription, error) {
	now := s.opts.Now()
	body["name"] = base.ID
	next, err := subscription.Parse(body, base.Active(now))
	if err != nil {
		return nil, invalidError(err)
	}
	if err := next.Spec.TryPayload(); err != nil {
		return nil, &InvalidError{Key: "payload", Message: err.Error()}
	}
	if err := s.checkTarget(next.Spec.URL); err != nil {
		return nil, &InvalidError{Key: "url", Message: err.Error()}
	}
	raw, err := next.Spec.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode subscription %s: %w", base.ID, err)
	}
	if err := s.acquireSubs(ctx); err != nil {
		return nil, err
	}
	defer s.unlockSubs()
	rec := *base
	rec.Spec, rec.Compat, rec.UpdatedAt = raw, compat, now
	next = next.WithRecord(&rec)
	err = s.apply(func(t store.Txn) error {
		stored, err := current(t, base.ID, base)
		if err != nil {
			return err
		}
		rec.Version = stored.Version + 1
		return t.PutAPISubscription(&rec)
	}, func() { s.opts.Subscriptions.Put(next) })
	if err != nil {
		return nil, err
	}
	return next, nil
}

// RemoveSubscription deletes the API subscription id with its health,
// as /v1's DELETE does.
func (s *Server) RemoveSubscription(ctx context.Context, id string) error {
	if err := s.acquireSubs(ctx); err != nil {
		return err
	}
	defer s.unlockSubs()
	err := s.apply(removeRecord(id), func() { s.opts.Subscriptions.Remove(id) })
	if err != nil {
		return err
	}
	return s.opts.Notifier.Forget(ctx, id)
}

// SubscriptionStats is a subscription's delivery health, as /v1 shows it.
func (s *Server) SubscriptionStats(id string) notifier.SubscriptionStats {
	st, _ := s.opts.Notifier.Stats(id)
	return st
}

// NextSequence hands out the next value of a store counter, in a
// transaction of its own: a value taken by a change that then fails is
// skipped, never given twice.
// Racing takers conflict, and the store gives up redoing after a few
// tries: they are redone here until ctx ends.
func (s *Server) NextSequence(ctx context.Context, name string) (uint64, error) {
	for {
		var n uint64
		err := s.opts.Store.Update(func(t store.Txn) error {
			var err error
			n, err = t.NextSequence(name)
			return err
		})
		switch {
		case err == nil:
			return n, nil
		case !store.IsConflict(err) || ctx.Err() != nil:
			return 0, fmt.Errorf("next %s: %w", name, err)
		}
	}
}

// invalidError turns Parse's validation error into an InvalidError for
// its first problem ("url: must be …").
func invalidError(err error) error {
	msg := err.Error()
	var ve *check.ValidationError
	if errors.As(err, &ve) && len(ve.Problems) > 0 {
		msg = ve.Problems[0]
	}
	key, text, _ := strings.Cut(msg, ": ")
	return &InvalidError{Key: key, Message: text, parse: err}
}

// SetSubscriptionDisabled turns deliveries to id off or back on, as
// PATCH's disabled does.
func (s *Server) SetSubscriptionDisabled(ctx context.Context, id string, disabled bool) error {
	return s.opts.Notifier.SetDisabled(ctx, id, disabled)
}

// removeRecord deletes the stored subscription id with its health, so a
// new one of the same name starts afresh rather than disabled.
func removeRecord(id string) func(store.Txn) error {
	return func(t store.Txn) error {
		if _, err := current(t, id, nil); err != nil {
			return err
		}
		if err := t.DeleteSubState(id); err != nil {
			return err
		}
		return t.DeleteAPISubscription(id)
	}
}
