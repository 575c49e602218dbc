package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/pollrelay/pollrelay/store"
)

// The outcomes of a subscription change that lost to another one.
var (
	errSubGone   = errors.New("subscription deleted")
	errSubExists = errors.New("subscription exists")
	errSubMoved  = errors.New("subscription changed since it was read")
)

// lockSubs serialises the API's subscription changes. Each one reads its
// record, writes it, puts it in the registry and rebuilds the notifier
// from the registry before the next starts, so a 2xx answer states what is stored and what the notifier
// signs with, and an earlier change's rebuild never lands after a later
// one's. It answers 503 itself when the request ends while waiting.
func (s *Server) lockSubs(w http.ResponseWriter, r *http.Request) bool {
	if err := s.acquireSubs(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, errSubsBusy.Error())
		return false
	}
	return true
}

// errSubsBusy is a request that ended while another subscription change
// ran.
var errSubsBusy = errors.New("request cancelled while another subscription change ran")

// acquireSubs is lockSubs for a caller that answers by itself.
func (s *Server) acquireSubs(ctx context.Context) error {
	select {
	case s.subLock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errSubsBusy, ctx.Err())
	}
}

func (s *Server) unlockSubs() { <-s.subLock }

// current reads id's stored record inside t, which makes it part of the
// transaction's conflict set: a concurrent write of it fails the commit
// (Update runs write again, which then sees the new version). It returns
// errSubGone when the record is gone and errSubMoved when it was written
// since base (nil: any version) was read.
func current(t store.Txn, id string, base *store.SubscriptionRecord) (*store.SubscriptionRecord, error) {
	cur, err := t.APISubscription(id)
	switch {
	case err != nil:
		return nil, err
	case cur == nil:
		return nil, errSubGone
	case base != nil && cur.Version != base.Version:
		return nil, errSubMoved
	}
	return cur, nil
}

// commit runs one subscription change in a transaction; once it is
// stored, applied records it in the registry and the notifier's
// subscriptions are rebuilt from there. write must read the record it
// changes with current (or check its absence) inside the transaction. It
// answers the failure itself: 404 for a deleted subscription, 409 for a
// name taken or a change that lost to another one, 500 otherwise.
func (s *Server) commit(w http.ResponseWriter, r *http.Request, id string, write func(store.Txn) error, applied func()) bool {
	return s.answered(w, r, id, s.apply(write, applied))
}

// answered answers a failed change of id, as commit does; true when err
// is nil.
func (s *Server) answered(w http.ResponseWriter, r *http.Request, id string, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, errSubGone):
		writeError(w, http.StatusNotFound, "no subscription "+quote(id))
	case errors.Is(err, errSubExists):
		writeError(w, http.StatusConflict, "name: a subscription named "+quote(id)+" exists")
	case errors.Is(err, errSubMoved):
		writeError(w, http.StatusConflict, "subscription "+quote(id)+" was changed by another request; read it again and retry")
	default:
		s.internal(w, r, err)
	}
	return false
}

// apply is commit for a caller that answers by itself. A change that lost
// to another is errSubMoved, whatever the store called it.
func (s *Server) apply(write func(store.Txn) error, applied func()) error {
	if err := s.opts.Store.Update(write); err != nil {
		if store.IsConflict(err) {
			return fmt.Errorf("%w: %w", errSubMoved, err)
		}
		return err
	}
	applied()
	return s.opts.Control.SubscriptionsChanged()
}
