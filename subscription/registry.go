package subscription

import (
	"cmp"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// Registry holds every subscription pollrelay knows: the config file's and
// those created through the API. Each enters it validated and compiled,
// once, so reading it (a GET, a list, a rebuild of the notifier's set)
// parses nothing. It is safe for concurrent use; the API orders its own
// changes (see api's lockSubs).
type Registry struct {
	log *slog.Logger

	mu     sync.RWMutex
	config []*Subscription          // in file order
	stored map[string]*Subscription // by id
}

// NewRegistry returns an empty registry.
func NewRegistry(log *slog.Logger) *Registry {
	if log == nil {
		log = slog.Default()
	}
	return &Registry{log: log, stored: map[string]*Subscription{}}
}

// SetConfig replaces the config file's subscriptions, at start and on
// reload, with specs config has validated. When one fails to compile
// nothing changes.
func (r *Registry) SetConfig(specs []Spec) error {
	next := make([]*Subscription, 0, len(specs))
	for _, spec := range specs {
		s, err := FromConfig(spec)
		if err != nil {
			return err
		}
		next = append(next, s)
	}
	r.mu.Lock()
	r.config = next
	r.mu.Unlock()
	return nil
}

// Records is where Load reads the stored subscriptions: a store
// transaction.
type Records interface {
	APISubscriptions(fn func(*store.SubscriptionRecord) error) error
}

// Load replaces the API subscriptions with those stored, validating each.
// A record that no longer validates (written under other rules) is logged
// and left out, so it does not keep the others from delivering.
func (r *Registry) Load(recs Records, now time.Time) error {
	next := map[string]*Subscription{}
	err := recs.APISubscriptions(func(rec *store.SubscriptionRecord) error {
		s, err := FromRecord(rec, now)
		if err != nil {
			r.log.Error("stored subscription is invalid; skipped", "subscription", rec.ID, "error", err.Error())
			return nil
		}
		next[s.ID()] = s
		return nil
	})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.stored = next
	r.mu.Unlock()
	return nil
}

// Put adds or replaces an API subscription (one with its Record), once
// that record is stored.
func (r *Registry) Put(s *Subscription) {
	r.mu.Lock()
	r.stored[s.ID()] = s
	r.mu.Unlock()
}

// Remove drops an API subscription, once its record is deleted.
func (r *Registry) Remove(id string) {
	r.mu.Lock()
	delete(r.stored, id)
	r.mu.Unlock()
}

// Get returns the subscription with this id, or nil. A config
// subscription shadows an API one of the same name.
func (r *Registry) Get(id string) *Subscription {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, s := range r.config {
		if s.ID() == id {
			return s
		}
	}
	return r.stored[id]
}

// List returns every subscription as the API lists them: API ones newest
// first, then the config file's in its order. An API one shadowed by a
// config one of its name is listed too.
func (r *Registry) List() []*Subscription {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := r.storedNewestFirst()
	return append(out, r.config...)
}

// Active returns the subscriptions events are delivered to: every config
// one but the templates, and each API one whose name no config one takes.
func (r *Registry) Active() []*Subscription {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Subscription, 0, len(r.config)+len(r.stored))
	for _, s := range r.config {
		if !s.Spec.Template {
			out = append(out, s)
		}
	}
	for _, s := range r.storedNewestFirst() {
		if slices.ContainsFunc(r.config, func(c *Subscription) bool { return c.ID() == s.ID() }) {
			r.log.Warn("an API subscription has the name of a config one; the config's is used", "subscription", s.ID())
			continue
		}
		out = append(out, s)
	}
	return out
}

// IDs lists every subscription id, config ones first.
func (r *Registry) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var ids []string
	for _, s := range r.config {
		ids = append(ids, s.ID())
	}
	for _, s := range r.storedNewestFirst() {
		ids = append(ids, s.ID())
	}
	return ids
}

// storedNewestFirst orders the API subscriptions by creation, newest
// first; r.mu is held.
func (r *Registry) storedNewestFirst() []*Subscription {
	out := make([]*Subscription, 0, len(r.stored))
	for _, s := range r.stored {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Subscription) int {
		return cmp.Or(b.Record.CreatedAt.Compare(a.Record.CreatedAt), cmp.Compare(a.ID(), b.ID()))
	})
	return out
}
