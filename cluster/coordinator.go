package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Margin is how long before a lease would expire that this member stops
// using it, counted from the last renewal it sent by its monotonic clock:
// the renewal may have reached the backend later than it was sent, and
// the clocks tick at slightly different rates.
const Margin = time.Second

// Options configure a Coordinator.
type Options struct {
	// Member is this replica's name (the pod's name in Kubernetes).
	Member string
	// Lease is how long a lease lasts without renewal: the longest a dead
	// member's work waits for another member.
	Lease   time.Duration
	Logger  *slog.Logger
	Metrics *Metrics // nil: none
}

// Coordinator holds this member's share of the leases: it renews them,
// takes free ones, hands over what exceeds its share, and tells its
// subscribers each change.
type Coordinator struct {
	b     Backend
	me    Holder
	lease time.Duration
	renew time.Duration
	log   *slog.Logger
	// level is what the lease changes are logged at: Info on a shared
	// backend, Debug on Solo, where one process holds everything and a
	// lease changing hands says nothing to its operator.
	level   slog.Level
	metrics *Metrics
	now     func() time.Time

	// wake asks Run for a step now: a handover is ready, or the sources
	// changed.
	wake chan struct{}
	// ready is closed after Run's first step.
	ready     chan struct{}
	readyOnce sync.Once

	mu      sync.Mutex
	want    map[string]string
	configs map[string]string
	version string
	joined  bool
	held    map[string]*held
	// beatSent is when the last heartbeat (or join) that succeeded was
	// sent: every lease held lasts from then.
	beatSent time.Time
	members  []Member
	// leases is every lease's state as last seen, for HolderOf.
	leases map[string]Lease
	subs   map[*subscriber]struct{}
	// lastErr is the backend failure last logged, so a repeated one is
	// logged once and its recovery once.
	lastErr   string
	cancelRun context.CancelFunc
	runDone   chan struct{}

	// known caches each member's configs by version; only Run's
	// goroutine touches it.
	known map[Holder]memberConfigs
}

type memberConfigs struct {
	version string
	configs map[string]string
}

// held is a lease this member holds.
type held struct {
	token int64
	// validUntil is when this member stops using the lease unless it is
	// renewed: Margin before it expires, by the last renewal sent.
	validUntil time.Time
	// handover is set while the lease is being let go.
	handover *handover
}

// New returns a coordinator for member o.Member over b. It holds nothing
// until Run.
func New(b Backend, o Options) *Coordinator {
	var id [8]byte
	rand.Read(id[:])
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	me := Holder{Member: o.Member, ID: hex.EncodeToString(id[:])}
	level := slog.LevelInfo
	if _, solo := b.(*Solo); solo {
		level = slog.LevelDebug
	}
	return &Coordinator{
		b: b, me: me, lease: o.Lease, renew: renewInterval(o.Lease), log: log.With("member", me.String()), level: level,
		metrics: o.Metrics, now: time.Now, wake: make(chan struct{}, 1), ready: make(chan struct{}),
		want: map[string]string{}, configs: map[string]string{}, held: map[string]*held{},
		subs: map[*subscriber]struct{}{}, known: map[Holder]memberConfigs{},
	}
}

// renewInterval is how often leases are renewed: four times per lease, so
// that three renewals in a row may fail before a lease is at risk.
func renewInterval(lease time.Duration) time.Duration {
	return max(lease/4, 10*time.Millisecond)
}

// Holder is this process as the backend knows it.
func (c *Coordinator) Holder() Holder { return c.me }

// SetSources says which sources this member runs, with their config
// hashes; leases of sources no longer run are handed over.
func (c *Coordinator) SetSources(sources []Source) {
	want := leases(sources)
	configs := make(map[string]string, len(sources))
	for _, s := range sources {
		configs[s.Name] = s.Config
	}
	c.mu.Lock()
	changed := !maps.Equal(configs, c.configs)
	c.want, c.configs = want, configs
	if changed {
		c.version = digest(configs)
		c.joined = false
	}
	c.mu.Unlock()
	c.poke()
}

// digest is a member's configs in one value: equal configs, equal digest.
func digest(configs map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		fmt.Fprintf(h, "%q=%q\n", k, configs[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (c *Coordinator) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Holds reports whether this member holds the lease and may use it now,
// with its token: false once the lease is being handed over, or from
// Margin before it would expire unless renewed.
func (c *Coordinator) Holds(lease string) (token int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.held[lease]
	if h == nil || h.handover != nil || !c.now().Before(h.validUntil) {
		return 0, false
	}
	return h.token, true
}

// HolderOf is who holds a lease: this member while it holds it, else the
// live holder as last seen.
func (c *Coordinator) HolderOf(lease string) (Holder, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.held[lease]; h != nil {
		return c.me, true
	}
	l, ok := c.leases[lease]
	if !ok || !l.Live || l.Holder == c.me {
		return Holder{}, false
	}
	return l.Holder, true
}

// Ready is closed once Run took its first step: on Solo every lease is
// held then; on a shared backend this member holds what it could take at
// once (or the backend did not answer).
func (c *Coordinator) Ready() <-chan struct{} { return c.ready }

// Members returns the live members as last seen.
func (c *Coordinator) Members() []Holder {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Holder, len(c.members))
	for i, m := range c.members {
		out[i] = m.Holder
	}
	return out
}

// Subscribe calls fn for every lease this member gains or loses, in
// order, in a goroutine of its own; first for each lease already held.
// fn must call Done on each lost lease's event once it stopped using the
// lease. The returned cancel stops the calls (wait for one in progress)
// and must not be called from fn.
func (c *Coordinator) Subscribe(fn func(Event)) (cancel func()) {
	s := newSubscriber(fn)
	c.mu.Lock()
	for _, name := range slices.Sorted(maps.Keys(c.held)) {
		if h := c.held[name]; h.handover == nil {
			s.send(Event{Lease: name, Held: true, Token: h.token})
		}
	}
	c.subs[s] = struct{}{}
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.subs, s)
			c.mu.Unlock()
			s.cancel()
		})
	}
}

// Run keeps this member's leases until ctx ends. Ending ctx leaves the
// leases to expire (as a member that died would); Leave hands them over
// at once.
func (c *Coordinator) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c.mu.Lock()
	c.cancelRun, c.runDone = cancel, done
	c.mu.Unlock()
	defer close(done)
	defer cancel()
	var wakeups <-chan struct{}
	if w, ok := c.b.(Waker); ok {
		wakeups = w.Wakeups(ctx, c.me)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
		case _, ok := <-wakeups:
			if !ok {
				wakeups = nil
			}
		}
		more := c.step(ctx)
		c.readyOnce.Do(func() { close(c.ready) })
		t.Reset(c.untilNext(more))
	}
}

// untilNext is how long Run waits for its next step: a renewal interval,
// less when a lease would stop being usable before then.
func (c *Coordinator) untilNext(more bool) time.Duration {
	if more {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.renew
	now := c.now()
	for _, h := range c.held {
		next = min(next, h.validUntil.Sub(now))
	}
	return max(next, 0)
}

// step renews, looks and acts once; more reports acquisitions left for
// the next step, which follows at once.
func (c *Coordinator) step(ctx context.Context) (more bool) {
	if err := c.join(ctx); err != nil {
		c.failed("join", err)
		c.expireOverdue()
		return false
	}
	if err := c.heartbeat(ctx); err != nil {
		c.failed("renew leases", err)
		c.expireOverdue()
		return false
	}
	c.expireOverdue()
	v, err := c.look(ctx)
	if err != nil {
		c.failed("read leases", err)
		return false
	}
	d := plan(v)
	c.mu.Lock()
	c.handOver(d.drop, ReasonReleased)
	c.handOver(d.rebalance, ReasonRebalanced)
	c.mu.Unlock()
	if err := c.releaseStale(ctx, d.stale); err != nil {
		c.failed("release leases", err)
		return false
	}
	if err := c.releaseReady(ctx); err != nil {
		c.failed("release leases", err)
		return false
	}
	more, err = c.acquire(ctx, d.acquire)
	if err != nil {
		c.failed("acquire leases", err)
		return false
	}
	c.recovered()
	return more
}

func (c *Coordinator) failed(op string, err error) {
	msg := op + ": " + err.Error()
	c.mu.Lock()
	repeat := c.lastErr == msg
	c.lastErr = msg
	c.mu.Unlock()
	if !repeat {
		c.log.Warn("cluster: "+op+" failed; retrying", "err", err)
	}
}

func (c *Coordinator) recovered() {
	c.mu.Lock()
	was := c.lastErr
	c.lastErr = ""
	c.mu.Unlock()
	if was != "" {
		c.log.Info("cluster: the backend answers again")
	}
}

// Leave stops Run, hands every lease over at once and removes this member,
// so the others take its work without waiting for the leases to expire.
// Call it once nothing uses the leases any more (the poller stopped).
func (c *Coordinator) Leave(ctx context.Context) error {
	c.mu.Lock()
	cancel, done := c.cancelRun, c.runDone
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	c.mu.Lock()
	names := slices.Sorted(maps.Keys(c.held))
	for _, name := range names {
		c.drop(name, ReasonReleased)
	}
	c.mu.Unlock()
	// The leases and the membership go together, so that the others,
	// woken by it, count the leases among themselves alone.
	if err := c.b.Leave(ctx, c.me); err != nil {
		return fmt.Errorf("leave the cluster, handing over %d leases: %w", len(names), err)
	}
	if len(names) > 0 {
		c.log.Log(context.Background(), c.level, "cluster: left, leases handed over", "leases", len(names))
	}
	return nil
}
