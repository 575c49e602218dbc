// Package poller fetches upstream endpoints on a schedule and feeds what it
// extracts to the diff. A Manager owns one loop per source and one
// scheduler that wakes each loop at its slot; a loop polls in a goroutine
// of its own only while a poll runs, and has one way to stop.
package poller

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pollrelay/pollrelay/cluster"
	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/store"
)

// ErrUnknownSource is returned for a source name the manager doesn't run.
var ErrUnknownSource = errors.New("unknown source")

// Manager runs the polling loops.
type Manager struct {
	st      store.Store
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	// transport replaces the network in tests; nil = the real one, from
	// pool.
	transport http.RoundTripper
	pool      transports

	mu    sync.Mutex
	loops map[string]*loop
	ctx   context.Context
	// sched wakes the loops; its goroutine runs from the first Apply
	// until Stop (stopSched).
	sched     *scheduler
	stopSched context.CancelFunc
	// wg counts the scheduler's goroutine and the counting of new
	// sources' items.
	wg sync.WaitGroup
	// watchers maps a list source to the watch sources whose watch_from
	// names it. Loops read it while polling without taking mu, which Apply
	// holds while it waits for loops to stop.
	watchers atomic.Pointer[map[string][]*diff.Source]
	// running is a copy of loops published by Apply, for the same reason:
	// a loop telling another about watches it added must not wait for mu.
	running atomic.Pointer[map[string]*loop]

	// leases says which sources this member polls (UseLeases, or a
	// coordinator over cluster.Solo that Start runs); fence makes the
	// store a loop writes through under a lease's token.
	leases      Leases
	fence       Fence
	unsubscribe func()
	stopSolo    context.CancelFunc
}

// NewManager returns a manager that writes to st. Loops start with Apply.
func NewManager(st store.Store, m *Metrics, log *slog.Logger) *Manager {
	mg := &Manager{st: st, log: log, metrics: m, now: time.Now, loops: map[string]*loop{}}
	mg.sched = newScheduler(func() time.Time { return mg.now() })
	return mg
}

// Start sets the context every loop runs under and starts the sources,
// each polling once its lease is held.
func (m *Manager) Start(ctx context.Context, sources []config.Source) {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	m.startLeases(ctx, sources)
	m.Apply(sources)
}

// Apply makes the running loops match sources: a new or changed source
// (re)starts, an unchanged one keeps running untouched, a removed one stops.
// Tracked state lives in the store, so a restarted loop continues from it.
// A source is compiled when its loop starts; one that does not compile (a
// config that loaded always does) is logged and not run.
func (m *Manager) Apply(sources []config.Source) {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]*compiled{}
	watchers := map[string][]*diff.Source{}
	for i := range sources {
		s := &sources[i]
		c := m.compiled(s)
		if c == nil {
			continue
		}
		want[s.Name] = c
		if s.IsWatch() && s.WatchFrom != "" {
			watchers[s.WatchFrom] = append(watchers[s.WatchFrom], c.Source)
		}
	}
	m.watchers.Store(&watchers)
	if m.leases != nil {
		// Only what this member runs: a source that did not compile
		// is left to members whose config has it right. An unchanged
		// source keeps the digest its compile made.
		run := make([]cluster.Source, 0, len(want))
		for name, c := range want {
			run = append(run, cluster.Source{Name: name, Config: c.digest})
		}
		m.leases.SetSources(run)
	}
	// A restarted source keeps its counts: the store behind them is the
	// same, and a watch added before the new loop counts again would
	// otherwise move a count that starts from zero.
	carried := map[string]Status{}
	for name, l := range m.loops {
		if c, ok := want[name]; ok && c == l.src {
			continue
		}
		l.stop()
		delete(m.loops, name)
		if _, ok := want[name]; !ok {
			m.metrics.dropSource(name)
		} else {
			carried[name] = l.status()
		}
	}
	if m.stopSched == nil {
		ctx, cancel := context.WithCancel(context.Background())
		m.stopSched = cancel
		m.wg.Go(func() { m.sched.run(ctx) })
	}
	var started []*loop
	for name, s := range want {
		if _, ok := m.loops[name]; ok {
			continue
		}
		l := newLoop(m, s)
		if old, ok := carried[name]; ok {
			l.carry(old)
		}
		m.loops[name] = l
		started = append(started, l)
	}
	m.logFirstPolls(m.acquireHeld())
	if len(started) > 0 {
		// Counted apart from polling, one source after another: a
		// restart of many sources reads the store gently.
		m.wg.Go(func() {
			for _, l := range started {
				l.initTracked()
			}
		})
	}
	running := maps.Clone(m.loops)
	m.running.Store(&running)
}

// acquireHeld lets every loop whose lease is held but which does not
// know it yet poll, and returns them: loops just started, or started
// before Start. A lease gained later reaches its loop through onLease.
// m.mu is held.
func (m *Manager) acquireHeld() []*loop {
	if m.leases == nil {
		return nil
	}
	var out []*loop
	now := m.now()
	for name, l := range m.loops {
		if l.isHeld() {
			continue
		}
		if token, ok := m.leases.Holds(cluster.SourceLease(name)); ok {
			l.acquireAt(token, now)
			out = append(out, l)
		}
	}
	return out
}

// compiled returns what the running loop of src compiled when src is
// unchanged, or compiles it; nil when it does not compile.
func (m *Manager) compiled(src *config.Source) *compiled {
	if l, ok := m.loops[src.Name]; ok && sameSource(l.src.cfg(), src) {
		return l.src
	}
	c, err := compile(src)
	if err != nil {
		m.log.Error("source not started", "source", src.Name, "error", err.Error())
		return nil
	}
	return c
}

// logFirstPolls says when newly started sources poll first: at their slot
// in the interval, which may be a while after a start.
func (m *Manager) logFirstPolls(started []*loop) {
	if len(started) == 0 {
		return
	}
	first, last := started[0].status().NextPollAt, started[0].status().NextPollAt
	for _, l := range started[1:] {
		at := l.status().NextPollAt
		first, last = minTime(first, at), maxTime(last, at)
	}
	if len(started) == 1 {
		m.log.Info("first poll scheduled at the source's slot in its interval; POST /v1/sources/{name}/poll polls now",
			"source", started[0].src.Name, "at", first.Format(time.RFC3339))
		return
	}
	m.log.Info("first polls scheduled, each source at its slot in its interval", "sources", len(started),
		"first", first.Format(time.RFC3339), "last", last.Format(time.RFC3339))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Stop stops every loop and waits for polls in progress to end. A poll cut
// short by the stop commits nothing it had not committed already.
func (m *Manager) Stop() {
	m.mu.Lock()
	loops := slices.Collect(maps.Values(m.loops))
	for _, l := range loops {
		l.halt()
	}
	if m.stopSched != nil {
		m.stopSched()
		m.stopSched = nil
	}
	unsubscribe, stopSolo := m.unsubscribe, m.stopSolo
	m.unsubscribe, m.stopSolo = nil, nil
	m.mu.Unlock()
	for _, l := range loops {
		l.runs.Wait()
	}
	if unsubscribe != nil {
		unsubscribe()
	}
	if stopSolo != nil {
		stopSolo()
	}
	m.wg.Wait()
	m.pool.closeIdle()
}

// watchersOf returns the watch sources whose watch_from names source.
func (m *Manager) watchersOf(source string) []*diff.Source {
	if w := m.watchers.Load(); w != nil {
		return (*w)[source]
	}
	return nil
}

// watchesAdded tells a watch source's loop about watches added for it.
func (m *Manager) watchesAdded(source string, n int) {
	if w, ok := m.loop(source).watchKind(); ok {
		w.addWatches(n)
	}
}

func (m *Manager) loop(name string) *loop {
	if r := m.running.Load(); r != nil {
		return (*r)[name]
	}
	return nil
}

// PollNow polls a source at once and waits for the poll to end. For a
// watch source that is one request per watch, all due at once (still
// within the source's rate and concurrency).
func (m *Manager) PollNow(ctx context.Context, name string) error {
	m.mu.Lock()
	l, ok := m.loops[name]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("poll %s: %w", name, ErrUnknownSource)
	}
	done, ok := l.pollNow()
	if !ok {
		return fmt.Errorf("poll %s: source stopped", name)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status describes each source's polling, sorted by name.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.loops))
	for _, l := range m.loops {
		st := l.status()
		st.Holder = m.holderOf(l.src.Name)
		out = append(out, st)
	}
	sortStatus(out)
	return out
}

// offset spreads sources over their interval deterministically, so load is
// even and stays where it was across restarts.
func offset(name string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(interval))
}

// nextSlot is the first time after now that sits on the source's grid.
func nextSlot(now time.Time, interval, off time.Duration) time.Time {
	base := now.Truncate(interval).Add(off)
	for !base.After(now) {
		base = base.Add(interval)
	}
	return base
}
