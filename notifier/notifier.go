// Package notifier delivers events to subscriptions: it fans the outbox out
// into deliveries, sends each as a signed request, and records the outcome
// and the next attempt's time in the store. Retries are durable: the
// schedule lives in the store, never in a sleeping goroutine, so a restart
// resumes every delivery where it was.
//
// One goroutine (Run) owns every delivery write and the in-flight set;
// workers only make HTTP requests and hand back results. That keeps the
// store free of write conflicts and lets outcomes be committed in batches.
// Operations the API needs (Redeliver, SetDisabled, Ping, Replay) are run on
// that goroutine too, through do.
package notifier

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// Options configure a Notifier.
type Options struct {
	// Grace is how long in-flight deliveries may finish on shutdown.
	Grace time.Duration
	// Now is the clock; tests inject one.
	Now func() time.Time
	// Transport, when set, carries every subscription's requests instead of
	// a transport per subscription. Tests use it to keep HTTP in process.
	Transport http.RoundTripper
}

// ErrStopped is returned by operations asked of a notifier that has stopped.
var ErrStopped = errors.New("notifier stopped")

// Notifier delivers events.
type Notifier struct {
	st        store.Store
	log       *slog.Logger
	metrics   *Metrics
	now       func() time.Time
	grace     time.Duration
	transport http.RoundTripper

	wake    chan struct{}
	ops     chan func(*state) error
	results chan result

	// mu guards subs, counts and health: Run writes them, the API reads
	// them (Stats) and SetSubscriptions replaces subs.
	mu   sync.Mutex
	subs map[string]*subState
	// counts is the queue gauge by subscription id and gauge state. It is
	// kept for every subscription that has deliveries, configured or not,
	// so a subscription that is removed and comes back counts right; its
	// keys are also every subscription id a delivery may exist for.
	counts map[string]map[string]int
	// health mirrors the u/ records, by subscription id.
	health map[string]store.SubState

	// sendCtx is cancelled when the shutdown grace period runs out.
	sendCtx    context.Context
	cancelSend context.CancelFunc
	workers    sync.WaitGroup
	done       chan struct{}
}

// subState is a subscription and its in-flight count.
type subState struct {
	sub      *Subscription
	client   *http.Client
	inflight int
	// build is the context of its payload evaluations, cancelled when the
	// subscription is removed or its payload changes, so an expression
	// that runs away stops with the subscription that holds it.
	build       context.Context
	cancelBuild context.CancelFunc
}

// state is what operations executed by Run may touch.
type state struct {
	n *Notifier
	// inflight maps key(sub, event) to the delivery's resource key, ""
	// when it is unordered.
	inflight map[string]string
	// busyResources counts in-flight deliveries per resource key. Only one
	// delivery of a resource may be in flight: normally the head of the
	// resource is the only one that may go, but a redelivery can put an
	// older event back at the head while a later one is being sent.
	busyResources map[string]int
	// unrecorded are outcomes of attempts made whose commit the store
	// refused, kept with their deliveries in flight until retryAt; see
	// commit. recordFailing is set from the first refusal to the next
	// success, so each is logged once.
	unrecorded    []result
	retryAt       time.Time
	recordFailing bool
	// lastErr is the fan-out or dispatch failure last logged, by stage,
	// so a store that keeps refusing is not logged every second.
	lastErr map[string]string
}

// sending counts attempts still out, not counting those whose outcome is
// held unrecorded.
func (s *state) sending() int { return len(s.inflight) - len(s.unrecorded) }

// failed logs a stage's failure when it differs from the last one logged,
// and the stage's recovery (err nil) once.
func (s *state) failed(stage string, err error) {
	switch {
	case err == nil && s.lastErr[stage] != "":
		s.n.log.Info(stage+" works again", "after", s.lastErr[stage])
		delete(s.lastErr, stage)
	case err != nil && err.Error() != s.lastErr[stage]:
		s.n.log.Error(stage+" failed", "error", err.Error())
		s.lastErr[stage] = err.Error()
	}
}

// New returns a notifier. Call SetSubscriptions, then Run.
func New(st store.Store, m *Metrics, log *slog.Logger, o Options) *Notifier {
	if o.Now == nil {
		o.Now = time.Now
	}
	sendCtx, cancel := context.WithCancel(context.Background())
	n := &Notifier{
		st: st, log: log, metrics: m, now: o.Now, grace: o.Grace, transport: o.Transport,
		wake:    make(chan struct{}, 1),
		ops:     make(chan func(*state) error),
		results: make(chan result, 256),
		subs:    map[string]*subState{},
		counts:  map[string]map[string]int{},
		health:  map[string]store.SubState{},
		sendCtx: sendCtx, cancelSend: cancel,
		done: make(chan struct{}),
	}
	st.OnEvent(n.Wake)
	return n
}

// Wake asks Run to look at the outbox and the schedule now.
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
		ss := &subState{sub: s}
		if ok {
			ss.inflight = old.inflight
			ss.client = old.client
			if policyOf(old.sub) != policyOf(s) {
				ss.client = nil
			}
			if payloadOf(old.sub) == payloadOf(s) {
				ss.build, ss.cancelBuild = old.build, old.cancelBuild
			} else {
				old.cancelBuild()
			}
		}
		if ss.build == nil {
			ss.build, ss.cancelBuild = context.WithCancel(n.sendCtx)
		}
		if ss.client == nil {
			if s.InsecureSkipVerify {
				n.log.Warn("TLS certificate verification is off for this subscription (insecure_skip_verify)", "subscription", s.ID)
			}
			ss.client = newHTTPClient(policyOf(s), n.transport)
		}
		n.metrics.initSubscription(s.ID)
		next[s.ID] = ss
	}
	for id, old := range n.subs {
		if _, ok := next[id]; !ok {
			old.cancelBuild()
			n.metrics.dropSubscription(id)
		}
	}
	n.subs = next
	n.Wake()
}

func payloadOf(s *Subscription) string {
	if s.Payload == nil {
		return "."
	}
	return s.Payload.String()
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

// subList returns the subscriptions in id order, so dispatch is
// deterministic.
func (n *Notifier) subList() []*subState {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*subState, 0, len(n.subs))
	for _, s := range n.subs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *subState) int {
		switch {
		case a.sub.ID < b.sub.ID:
			return -1
		case a.sub.ID > b.sub.ID:
			return 1
		}
		return 0
	})
	return out
}

// knownSubs returns every subscription id a delivery may exist for: the
// configured ones and those that had deliveries when Run started or since.
func (n *Notifier) knownSubs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	ids := make([]string, 0, len(n.counts)+len(n.subs))
	for id := range n.counts {
		ids = append(ids, id)
	}
	for id := range n.subs {
		if _, ok := n.counts[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// do runs op on the Run goroutine and waits for it.
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
		return ErrStopped
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
	s := &state{n: n, inflight: map[string]string{}, busyResources: map[string]int{}, lastErr: map[string]string{}}
	if err := n.load(); err != nil {
		return err
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if len(s.unrecorded) > 0 && !n.now().Before(s.retryAt) {
			n.commit(s, nil)
		}
		more, ferr := n.fanout()
		s.failed("fan-out", ferr)
		next, err := n.dispatch(s)
		s.failed("dispatch", err)
		if err != nil {
			next = n.now().Add(time.Second)
		}
		if ferr != nil {
			// The outbox still holds what failed: look again soon rather
			// than at the next event, which may be far off.
			next = earliest(next, n.now().Add(time.Second))
		}
		if len(s.unrecorded) > 0 {
			next = earliest(next, s.retryAt)
		}
		n.updateGauges()
		wait := time.Hour
		switch {
		case more:
			wait = 0 // a backlog in the outbox: come straight back
		case !next.IsZero():
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
			batch := n.collect(r)
			n.answered(s, batch)
			// The next requests go out before this batch's fsync, unless
			// an attempt failed: its outcome may disable the subscription
			// (410, disable_after), which must be known before sending
			// anything more to it.
			if allSucceeded(batch) {
				_, err := n.dispatch(s)
				s.failed("dispatch", err)
			}
			n.commit(s, batch)
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

func allSucceeded(batch []result) bool {
	for _, r := range batch {
		if r.outcome != OutcomeSuccess {
			return false
		}
	}
	return true
}

// earliest is the earlier of two times, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
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
// cancels the rest. A cancelled attempt is not recorded, so its delivery
// stays due as it was and is sent after the next start; so is one whose
// outcome the store still refuses at the end.
func (n *Notifier) drain(s *state) error {
	if s.sending() > 0 {
		n.log.Info("waiting for in-flight deliveries", "count", s.sending(), "grace", n.grace.String())
	}
	deadline := time.NewTimer(n.grace)
	defer deadline.Stop()
	for s.sending() > 0 {
		select {
		case r := <-n.results:
			batch := n.collect(r)
			n.answered(s, batch)
			n.commit(s, batch)
		case <-deadline.C:
			n.cancelSend()
			deadline.Reset(time.Hour)
		}
	}
	n.commit(s, nil)
	if len(s.unrecorded) > 0 {
		n.log.Warn("stopping with delivery outcomes the store refused; those deliveries are sent again after the restart, with the same webhook-id",
			"count", len(s.unrecorded))
		n.release(s, s.unrecorded)
		s.unrecorded = nil
	}
	n.cancelSend()
	n.workers.Wait()
	return nil
}
