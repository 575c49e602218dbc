package poller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pollrelay/pollrelay/cluster"
	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/store"
)

// Leases says which sources this member polls (a cluster.Coordinator). A
// loop polls only while its source's lease is held, and writes through
// the store Fence returns for the lease's token, so a poll that outlived
// its lease commits nothing.
type Leases interface {
	SetSources([]cluster.Source)
	Subscribe(fn func(cluster.Event)) (cancel func())
	Holds(lease string) (token int64, ok bool)
	HolderOf(lease string) (cluster.Holder, bool)
	Ready() <-chan struct{}
}

// Fence returns the store whose writes commit only while lease is held
// under token; nil writes to the manager's store unfenced (one process
// holds everything, as on Badger).
type Fence func(lease string, token int64) store.Store

// ErrLeaseLost is the answer to a PollNow whose source's lease this
// member lost before the poll ended.
var ErrLeaseLost = errors.New("this member no longer holds the source's lease")

// soloLease is how long the leases of a manager's own coordinator last;
// nothing else contends for them, so it only bounds a paused process.
const soloLease = 15 * time.Second

// UseLeases makes the manager poll on l's leases, fenced by fence. Call
// it before Start; without it Start runs a coordinator of its own over
// cluster.Solo, so every manager polls through the same path.
func (m *Manager) UseLeases(l Leases, fence Fence) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leases, m.fence = l, fence
}

// startLeases starts the manager's own coordinator when it was given
// none, subscribes to the leases and says which sources it runs, then
// waits for the coordinator's first step, so sources whose leases are
// free start polling with the first Apply. m.mu is not held.
func (m *Manager) startLeases(ctx context.Context, sources []config.Source) {
	m.mu.Lock()
	if m.leases == nil {
		c := cluster.New(cluster.NewSolo(), cluster.Options{Member: "solo", Lease: soloLease, Logger: m.log})
		cctx, cancel := context.WithCancel(context.Background())
		m.stopSolo = cancel
		m.wg.Go(func() { c.Run(cctx) })
		m.leases = c
	}
	l := m.leases
	m.unsubscribe = l.Subscribe(m.onLease)
	m.mu.Unlock()
	l.SetSources(leaseSources(sources))
	select {
	case <-l.Ready():
	case <-ctx.Done():
	}
}

// leaseSources are the sources as the coordinator sees them, each with a
// digest of its config, so that during a rolling change a source's lease
// goes only to members that run it the same way. A watch source is one
// lease for now, like a list source.
func leaseSources(sources []config.Source) []cluster.Source {
	out := make([]cluster.Source, 0, len(sources))
	for i := range sources {
		out = append(out, cluster.Source{Name: sources[i].Name, Config: configDigest(&sources[i])})
	}
	return out
}

// configDigest is a digest of a source's config, plain data that encodes
// the same way every time.
func configDigest(s *config.Source) string {
	b, err := json.Marshal(s)
	if err != nil {
		// Plain data always encodes; a digest that can never match
		// keeps the lease from a member whose config is unknown.
		return "unencodable:" + err.Error()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// onLease starts a source's loop polling when its lease is gained and
// parks it when the lease is lost, telling the coordinator once the poll
// in progress has ended. A lease gained before its loop exists is picked
// up by Apply, which asks Holds.
func (m *Manager) onLease(e cluster.Event) {
	defer e.Done()
	kind, name, _, ok := cluster.ParseLease(e.Lease)
	if !ok || kind != cluster.KindSource {
		return
	}
	m.mu.Lock()
	l := m.loops[name]
	m.mu.Unlock()
	if l == nil {
		return
	}
	if e.Held {
		l.acquire(e.Token)
		return
	}
	l.release(e.Reason)
}

// fenced is the store a loop writes through under token.
func (m *Manager) fenced(source string, token int64) store.Store {
	if m.fence == nil {
		return m.st
	}
	return m.fence(cluster.SourceLease(source), token)
}

// holderOf is the member that holds a source's lease, as last seen.
func (m *Manager) holderOf(source string) string {
	if m.leases == nil {
		return ""
	}
	h, ok := m.leases.HolderOf(cluster.SourceLease(source))
	if !ok {
		return ""
	}
	return h.Member
}

// acquire lets the loop poll under token: at its next slot, or at once
// when a PollNow waits.
func (l *loop) acquire(token int64) { l.acquireAt(token, l.m.now()) }

func (l *loop) acquireAt(token int64, now time.Time) {
	l.gate.Lock()
	defer l.gate.Unlock()
	if l.stopped || (l.held && l.token == token) {
		return
	}
	l.held, l.token = true, token
	l.db.Store(&storeRef{l.m.fenced(l.src.Name, token)})
	if len(l.waiters) > 0 {
		l.startLocked()
		return
	}
	if !l.running {
		at := l.firstPoll(now)
		l.setNext(at)
		l.m.sched.add(l, at)
	}
}

// release parks the loop and waits for the poll in progress to end. A
// lease handed over (released, rebalanced) is still valid meanwhile, so
// that poll commits; one that expired is cancelled, since the store would
// refuse its writes anyway.
func (l *loop) release(reason string) {
	l.gate.Lock()
	l.held = false
	l.m.sched.remove(l)
	l.setNext(time.Time{})
	if reason == cluster.ReasonExpired && l.cancelPoll != nil {
		l.cancelPoll()
	}
	l.gate.Unlock()
	l.runs.Wait()
	l.log.Debug("source's lease let go", "reason", reason)
}

func (l *loop) isHeld() bool {
	l.gate.Lock()
	defer l.gate.Unlock()
	return l.held
}

// storeRef holds the store a loop writes through, swapped on each
// acquisition.
type storeRef struct{ store.Store }

// store is the store the loop reads and writes through now.
func (l *loop) store() store.Store { return l.db.Load().Store }

// storeFailure is the PollError of a store that refused a poll's writes:
// fenced when the lease had passed to another holder, which is no failure
// of the source.
func storeFailure(err error) *PollError {
	if store.IsFenced(err) {
		return &PollError{Outcome: OutcomeFenced, Err: fmt.Errorf("poll discarded: %w", err)}
	}
	return &PollError{Outcome: OutcomeStore, Err: err}
}
