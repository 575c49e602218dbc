// Package notifier delivers events to subscriptions: it fans the outbox out
// into deliveries, sends each as a signed request, and records the outcome
// and the next attempt's time in the store. Retries are durable: the
// schedule lives in Badger, never in a sleeping goroutine, so a restart
// resumes every delivery where it was.
//
// One goroutine (run) owns every delivery write and the in-flight set;
// workers only make HTTP requests and hand back results. That keeps the
// store free of write conflicts and lets outcomes be committed in batches.
package notifier

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// Options configure a Notifier.
type Options struct {
	// Grace is how long in-flight deliveries may finish on shutdown.
	Grace time.Duration
	// Now is the clock; tests inject one.
	Now func() time.Time
}

// Notifier delivers events.
type Notifier struct {
	st      *store.Store
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	grace   time.Duration

	wake    chan struct{}
	ops     chan func(*state) error
	results chan result

	mu   sync.Mutex
	subs map[string]*subState

	// sendCtx is cancelled when the shutdown grace period runs out.
	sendCtx    context.Context
	cancelSend context.CancelFunc
	workers    sync.WaitGroup
	done       chan struct{}
}

// subState is a subscription and what run tracks about it.
type subState struct {
	sub      *Subscription
	client   *http.Client
	inflight int
	counts   map[string]int // queue gauge by state
}

// state is what operations executed by run may touch.
type state struct {
	n        *Notifier
	inflight map[string]bool
}

// New returns a notifier. Call SetSubscriptions, then Run.
func New(st *store.Store, m *Metrics, log *slog.Logger, o Options) *Notifier {
	if o.Now == nil {
		o.Now = time.Now
	}
	sendCtx, cancel := context.WithCancel(context.Background())
	n := &Notifier{
		st: st, log: log, metrics: m, now: o.Now, grace: o.Grace,
		wake:    make(chan struct{}, 1),
		ops:     make(chan func(*state) error),
		results: make(chan result, 256),
		subs:    map[string]*subState{},
		sendCtx: sendCtx, cancelSend: cancel,
		done: make(chan struct{}),
	}
	st.OnEvent(n.Wake)
	return n
}

// Wake asks run to look at the outbox and the schedule now.
func (n *Notifier) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// SetSubscriptions replaces the set of subscriptions. Deliveries of a
// removed subscription stay in the store and resume if it comes back.
func (n *Notifier) SetSubscriptions(subs []*Subscription) {
	n.mu.Lock()
	defer n.mu.Unlock()
	next := map[string]*subState{}
	for _, s := range subs {
		old, ok := n.subs[s.ID]
		ss := &subState{sub: s, counts: map[string]int{}}
		if ok {
			ss.inflight, ss.counts = old.inflight, old.counts
			ss.client = old.client
			if old.sub.InsecureSkipVerify != s.InsecureSkipVerify {
				ss.client = nil
			}
		}
		if ss.client == nil {
			if s.InsecureSkipVerify {
				n.log.Warn("TLS certificate verification is off for this subscription (insecure_skip_verify)", "subscription", s.ID)
			}
			ss.client = newHTTPClient(s.InsecureSkipVerify)
		}
		n.metrics.initSubscription(s.ID)
		next[s.ID] = ss
	}
	for id := range n.subs {
		if _, ok := next[id]; !ok {
			n.metrics.dropSubscription(id)
		}
	}
	n.subs = next
	n.Wake()
}

// Subscription returns a subscription by id.
func (n *Notifier) Subscription(id string) (*Subscription, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ss, ok := n.subs[id]
	if !ok {
		return nil, false
	}
	return ss.sub, true
}

func (n *Notifier) sub(id string) *subState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.subs[id]
}

func (n *Notifier) subList() []*subState {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*subState, 0, len(n.subs))
	for _, s := range n.subs {
		out = append(out, s)
	}
	return out
}

// do runs op on the run goroutine and waits for it.
func (n *Notifier) do(ctx context.Context, op func(*state) error) error {
	errc := make(chan error, 1)
	wrapped := func(s *state) error {
		err := op(s)
		errc <- err
		return err
	}
	select {
	case n.ops <- wrapped:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return fmt.Errorf("notifier stopped")
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run delivers until ctx is cancelled, then lets in-flight deliveries
// finish for the grace period and records their outcomes. Anything still
// unfinished stays due in the store and is sent after the next start.
func (n *Notifier) Run(ctx context.Context) error {
	defer close(n.done)
	s := &state{n: n, inflight: map[string]bool{}}
	if err := n.loadCounts(); err != nil {
		return err
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if err := n.fanout(); err != nil {
			n.log.Error("fan-out failed", "error", err.Error())
		}
		next, err := n.dispatch(s)
		if err != nil {
			n.log.Error("dispatch failed", "error", err.Error())
			next = n.now().Add(time.Second)
		}
		n.updateGauges()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(n.now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return n.drain(s)
		case <-n.wake:
		case <-timer.C:
		case r := <-n.results:
			n.commit(s, n.collect(r))
		case op := <-n.ops:
			if err := op(s); err != nil {
				n.log.Debug("operation failed", "error", err.Error())
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// collect gathers r and whatever other results are ready, so a burst of
// outcomes is committed with one fsync.
func (n *Notifier) collect(r result) []result {
	batch := []result{r}
	for len(batch) < 512 {
		select {
		case r := <-n.results:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// drain waits for in-flight deliveries until the grace period ends, then
// cancels the rest.
func (n *Notifier) drain(s *state) error {
	if len(s.inflight) > 0 {
		n.log.Info("waiting for in-flight deliveries", "count", len(s.inflight), "grace", n.grace.String())
	}
	deadline := time.NewTimer(n.grace)
	defer deadline.Stop()
	for len(s.inflight) > 0 {
		select {
		case r := <-n.results:
			n.commit(s, n.collect(r))
		case <-deadline.C:
			n.cancelSend()
			deadline.Reset(time.Hour)
		}
	}
	n.cancelSend()
	n.workers.Wait()
	return nil
}

// busy reports whether a subscription has max_in_flight requests out.
func (n *Notifier) busy(ss *subState) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return ss.inflight >= ss.sub.MaxInFlight
}

func key(sub, eventID string) string { return sub + "\x00" + eventID }

// dispatch starts every due delivery that may go now and returns when the
// next one falls due (zero if none is queued).
func (n *Notifier) dispatch(s *state) (time.Time, error) {
	now := n.now()
	for {
		limit := len(s.inflight) + 256
		var refs []store.DueRef
		if err := n.st.View(func(t *store.Txn) error {
			var err error
			refs, err = t.Due(now, limit)
			return err
		}); err != nil {
			return time.Time{}, fmt.Errorf("read schedule: %w", err)
		}
		started, waiting, err := n.start(s, refs)
		if err != nil {
			return time.Time{}, err
		}
		if len(waiting) > 0 {
			if err := n.park(waiting); err != nil {
				return time.Time{}, err
			}
		}
		if len(refs) < limit || (started == 0 && len(waiting) == 0) {
			break
		}
	}
	var next time.Time
	err := n.st.View(func(t *store.Txn) error {
		at, ok, err := t.NextDueAfter(now)
		if ok {
			next = at
		}
		return err
	})
	return next, err
}

// start sends the due deliveries that may go: not already in flight, their
// subscription known and below max_in_flight, and first of their resource.
// Those behind an open earlier delivery are returned to be parked.
func (n *Notifier) start(s *state, refs []store.DueRef) (int, []*store.Delivery, error) {
	started := 0
	var waiting []*store.Delivery
	err := n.st.View(func(t *store.Txn) error {
		for _, ref := range refs {
			k := key(ref.Subscription, ref.EventID)
			if s.inflight[k] {
				continue
			}
			ss := n.sub(ref.Subscription)
			if ss == nil || n.busy(ss) {
				continue
			}
			d, err := t.Delivery(ref.Subscription, ref.EventID)
			if err != nil {
				return err
			}
			if d == nil || !d.Queued() {
				continue
			}
			if d.Resource != "" {
				head, err := t.ResourceHead(d.Subscription, d.Resource)
				if err != nil {
					return err
				}
				if head != "" && head != d.EventID {
					waiting = append(waiting, d)
					continue
				}
			}
			e, err := t.Event(d.EventID)
			if err != nil {
				return err
			}
			if e == nil {
				n.log.Error("delivery refers to a missing event", "event_id", d.EventID, "subscription", d.Subscription)
				continue
			}
			s.inflight[k] = true
			n.mu.Lock()
			ss.inflight++
			n.mu.Unlock()
			started++
			n.workers.Add(1)
			go func(sub *Subscription, client *http.Client) {
				defer n.workers.Done()
				n.results <- send(n.sendCtx, client, sub, e, n.now)
			}(ss.sub, ss.client)
		}
		return nil
	})
	return started, waiting, err
}

// park moves deliveries that wait behind an earlier one of their resource
// out of the schedule; finishing the earlier one requeues them.
func (n *Notifier) park(ds []*store.Delivery) error {
	now := n.now()
	return n.st.Update(func(t *store.Txn) error {
		for _, prev := range ds {
			d := *prev
			d.State, d.UpdatedAt = store.Waiting, now
			if err := t.PutDelivery(&d, prev); err != nil {
				return err
			}
		}
		return nil
	})
}

// fanout turns outbox events into one delivery per matching subscription.
func (n *Notifier) fanout() error {
	subs := n.subList()
	for {
		now := n.now()
		var ids []string
		added := map[string]int{}
		err := n.st.Update(func(t *store.Txn) error {
			var err error
			if ids, err = t.Outbox(256); err != nil {
				return err
			}
			clear(added)
			for _, id := range ids {
				e, err := t.Event(id)
				if err != nil {
					return err
				}
				if e != nil {
					for _, ss := range subs {
						if !ss.sub.Wants(e.Type) {
							continue
						}
						if err := t.PutDelivery(newDelivery(ss.sub, e, now), nil); err != nil {
							return err
						}
						added[ss.sub.ID]++
					}
				}
				if err := t.RemoveFromOutbox(id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("fan out: %w", err)
		}
		n.mu.Lock()
		for id, c := range added {
			if ss := n.subs[id]; ss != nil {
				ss.counts["pending"] += c
			}
		}
		n.mu.Unlock()
		if len(ids) < 256 {
			return nil
		}
	}
}

func newDelivery(s *Subscription, e *event.Event, now time.Time) *store.Delivery {
	d := &store.Delivery{
		EventID:      e.ID,
		Subscription: s.ID,
		State:        store.Pending,
		NextAt:       now,
		CreatedAt:    now,
		UpdatedAt:    now,
		EventAt:      e.CreatedAt,
	}
	if s.Ordered {
		d.Resource = e.Resource()
	}
	return d
}
