package postgres

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollrelay/pollrelay/cluster"
	"github.com/pollrelay/pollrelay/store"
)

// testLease is short, so a dead member's work moves within a test.
const testLease = 2 * time.Second

// member is one coordinator of a test cluster with what it was told.
type member struct {
	c       *cluster.Coordinator
	reg     *prometheus.Registry
	metrics *cluster.Metrics
	cancel  context.CancelFunc
	done    chan struct{}
	unsub   func()

	mu     sync.Mutex
	tokens map[string][]int64 // every token each lease was acquired with
}

func startMember(t *testing.T, b cluster.Backend, name string, sources []cluster.Source) *member {
	t.Helper()
	m := &member{reg: prometheus.NewRegistry(), done: make(chan struct{}), tokens: map[string][]int64{}}
	m.metrics = cluster.NewMetrics(m.reg)
	m.c = cluster.New(b, cluster.Options{Member: name, Lease: testLease, Metrics: m.metrics})
	m.c.SetSources(sources)
	m.unsub = m.c.Subscribe(func(e cluster.Event) {
		if e.Held {
			m.mu.Lock()
			m.tokens[e.Lease] = append(m.tokens[e.Lease], e.Token)
			m.mu.Unlock()
		}
		e.Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		m.c.Run(ctx)
	}()
	t.Cleanup(m.stop)
	return m
}

// stop ends the member's Run without handing its leases over: as a
// member that died.
func (m *member) stop() {
	m.cancel()
	<-m.done
	m.unsub()
}

func (m *member) held(names []string) []string {
	var out []string
	for _, n := range names {
		if _, ok := m.c.Holds(n); ok {
			out = append(out, n)
		}
	}
	return out
}

// handoffs reads pollrelay_lease_handoffs_total{reason} as the member
// exposes it.
func (m *member) handoffs(t *testing.T, reason string) float64 {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "pollrelay_lease_handoffs_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no pollrelay_lease_handoffs_total{reason=%q}", reason)
	return 0
}

// until polls cond every 20 ms until it holds or the deadline passes.
func until(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("%s: not within %s", what, within)
		case <-tick.C:
		}
	}
	return time.Since(start)
}

func testSources() ([]cluster.Source, []string) {
	src := []cluster.Source{{Name: "videos", Config: "v1"}, {Name: "tasks", Config: "v1"}, {Name: "jobs", Config: "v1"},
		{Name: "status", Sharded: true, Config: "v1"}}
	names := []string{cluster.SourceLease("videos"), cluster.SourceLease("tasks"), cluster.SourceLease("jobs")}
	for i := range cluster.Shards {
		names = append(names, cluster.ShardLease("status", i))
	}
	return src, names
}

// even reports whether every lease is held by exactly one of ms and the
// shares differ by at most one.
func even(ms []*member, names []string) bool {
	total, lo, hi := 0, len(names), 0
	seen := map[string]bool{}
	for _, m := range ms {
		h := m.held(names)
		for _, n := range h {
			if seen[n] {
				return false
			}
			seen[n] = true
		}
		total += len(h)
		lo, hi = min(lo, len(h)), max(hi, len(h))
	}
	return total == len(names) && hi-lo <= 1
}

// TestClusterSpreadsAndHandsOver: three members converge to an even
// split; one that leaves hands its leases over at once; one that dies has
// its leases taken once they expire; and no token is ever given twice.
func TestClusterSpreadsAndHandsOver(t *testing.T) {
	st := openTest(t)
	sources, names := testSources()
	a := startMember(t, st.Cluster(), "a", sources)
	b := startMember(t, st.Cluster(), "b", sources)
	c := startMember(t, st.Cluster(), "c", sources)
	all := []*member{a, b, c}
	took := until(t, 30*time.Second, "an even split over three members", func() bool { return even(all, names) })
	t.Logf("even split of %d leases over 3 members after %s: %d %d %d", len(names), took,
		len(a.held(names)), len(b.held(names)), len(c.held(names)))
	if got := len(a.c.Members()); got != 3 {
		t.Errorf("a sees %d members; want 3", got)
	}

	// c leaves: its leases are released, not left to expire.
	cHeld := len(c.held(names))
	released := a.handoffs(t, cluster.ReasonReleased) + b.handoffs(t, cluster.ReasonReleased)
	expired := a.handoffs(t, cluster.ReasonExpired) + b.handoffs(t, cluster.ReasonExpired)
	c.stop()
	if err := c.c.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	took = until(t, 30*time.Second, "c's leases taken by a and b", func() bool { return even([]*member{a, b}, names) })
	t.Logf("after c left, its %d leases moved in %s (lease %s)", cHeld, took, testLease)
	if got := a.handoffs(t, cluster.ReasonReleased) + b.handoffs(t, cluster.ReasonReleased) - released; got < float64(cHeld) {
		t.Errorf("%v handoffs released; want at least the %d c held", got, cHeld)
	}
	if got := a.handoffs(t, cluster.ReasonExpired) + b.handoffs(t, cluster.ReasonExpired) - expired; got != 0 {
		t.Errorf("%v handoffs expired after a Leave; want none", got)
	}

	// b dies: it stops renewing, and a takes its leases once they expire.
	bHeld := len(b.held(names))
	b.stop()
	took = until(t, 30*time.Second, "b's leases taken by a", func() bool { return even([]*member{a}, names) })
	t.Logf("after b died, its %d leases moved in %s (lease %s + renewal %s)", bHeld, took, testLease, testLease/4)
	if got := a.handoffs(t, cluster.ReasonExpired) - expired; got < float64(bHeld) {
		t.Errorf("%v handoffs expired; want at least the %d b held", got, bHeld)
	}

	checkTokens(t, st, all, names)
}

// checkTokens: across every holder, each lease's tokens were handed out
// once each, and the lease's token now is the largest.
func checkTokens(t *testing.T, st *Store, ms []*member, names []string) {
	t.Helper()
	ls, err := st.Cluster().Leases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	now := map[string]int64{}
	for _, l := range ls {
		now[l.Name] = l.Token
	}
	for _, n := range names {
		seen := map[int64]bool{}
		for _, m := range ms {
			m.mu.Lock()
			toks := slices.Clone(m.tokens[n])
			m.mu.Unlock()
			if !slices.IsSorted(toks) {
				t.Errorf("%s: one member acquired it with tokens %v, not increasing", n, toks)
			}
			for _, tok := range toks {
				if seen[tok] {
					t.Errorf("%s: token %d given twice", n, tok)
				}
				seen[tok] = true
				if tok > now[n] {
					t.Errorf("%s: token %d above the lease's %d", n, tok, now[n])
				}
			}
		}
		if !seen[now[n]] {
			t.Errorf("%s: its token %d was not handed to any member (tokens %v)", n, now[n], slices.Sorted(maps.Keys(seen)))
		}
	}
}

// pausable is the real backend with renewals that can be held up, as a
// member paused by a long GC or SIGSTOP would hold them.
type pausable struct {
	cluster.Backend
	mu     sync.Mutex
	resume chan struct{} // nil while running
}

func (p *pausable) pause() {
	p.mu.Lock()
	p.resume = make(chan struct{})
	p.mu.Unlock()
}

func (p *pausable) unpause() {
	p.mu.Lock()
	close(p.resume)
	p.resume = nil
	p.mu.Unlock()
}

func (p *pausable) wait(ctx context.Context) error {
	p.mu.Lock()
	ch := p.resume
	p.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pausable) Heartbeat(ctx context.Context, h cluster.Holder, ttl time.Duration, names []string) ([]string, error) {
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	return p.Backend.Heartbeat(ctx, h, ttl, names)
}

func (p *pausable) Acquire(ctx context.Context, h cluster.Holder, claims []cluster.Claim) (map[string]int64, error) {
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	return p.Backend.Acquire(ctx, h, claims)
}

// acquire1 claims one lease.
func acquire1(ctx context.Context, cl *Cluster, h cluster.Holder, name, config string, expect int64) (int64, bool, error) {
	got, err := cl.Acquire(ctx, h, []cluster.Claim{{Name: name, Config: config, Expect: expect}})
	token, ok := got[name]
	return token, ok, err
}

// TestClusterFencesAPausedMember: a member whose renewals stop loses its
// lease to another member, and a transaction under its old token is
// refused while the new holder's commits.
func TestClusterFencesAPausedMember(t *testing.T) {
	st := openTest(t)
	sources := []cluster.Source{{Name: "videos", Config: "v1"}}
	lease := cluster.SourceLease("videos")
	pb := &pausable{Backend: st.Cluster()}
	a := startMember(t, pb, "a", sources)
	var old int64
	until(t, 30*time.Second, "a holds the lease", func() bool {
		var ok bool
		old, ok = a.c.Holds(lease)
		return ok
	})
	b := startMember(t, st.Cluster(), "b", sources)
	until(t, 30*time.Second, "b is a member", func() bool { return len(b.c.Members()) == 2 })

	pb.pause()
	var tok int64
	took := until(t, 30*time.Second, "b takes the paused member's lease", func() bool {
		var ok bool
		tok, ok = b.c.Holds(lease)
		return ok
	})
	t.Logf("the paused member's lease moved after %s; token %d → %d", took, old, tok)
	if tok <= old {
		t.Errorf("new token %d not above the old %d", tok, old)
	}
	if _, ok := a.c.Holds(lease); ok {
		t.Error("the paused member still says it holds the lease")
	}
	write := func(token int64) error {
		return st.Fenced(lease, token).Update(func(tx store.Txn) error {
			return tx.PutSourceState("videos", store.SourceState{Baselined: true})
		})
	}
	if err := write(old); !store.IsFenced(err) {
		t.Errorf("a write under the old token: %v; want it fenced", err)
	}
	if err := write(tok); err != nil {
		t.Errorf("a write under the new token: %v", err)
	}
	pb.unpause()
	a.stop()
	b.stop()
	checkTokens(t, st, []*member{a, b}, []string{lease})
}

// TestClusterRenewalsDoNotWaitForPolls: a poll's transaction holds the
// token row FOR SHARE; the holder's renewal goes through meanwhile, and
// another member's acquisition waits for it (and then gives up for now)
// instead of taking the token from under it.
func TestClusterRenewalsDoNotWaitForPolls(t *testing.T) {
	st := openTest(t)
	cl := st.Cluster()
	ctx := t.Context()
	me := cluster.Holder{Member: "a", ID: "1"}
	other := cluster.Holder{Member: "b", ID: "1"}
	lease := cluster.SourceLease("videos")
	// me's heartbeat, and so its lease, lasts 200 ms unless renewed.
	for h, ttl := range map[cluster.Holder]time.Duration{me: 200 * time.Millisecond, other: time.Minute} {
		if err := cl.Join(ctx, cluster.Member{Holder: h, Version: "x"}, ttl, map[string]string{"videos": "v1"}); err != nil {
			t.Fatal(err)
		}
	}
	tok, ok, err := acquire1(ctx, cl, me, lease, "v1", 0)
	if err != nil || !ok {
		t.Fatalf("acquire: %d %v %v", tok, ok, err)
	}
	inPoll, finish, polled := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		polled <- st.Fenced(lease, tok).Update(func(tx store.Txn) error {
			// A read sends BEGIN and the fence check: the row is locked
			// from here to the commit.
			if _, err := tx.SourceState("videos"); err != nil {
				return err
			}
			select {
			case <-inPoll:
			default:
				close(inPoll)
			}
			<-finish
			return tx.PutSourceState("videos", store.SourceState{Baselined: true})
		})
	}()
	<-inPoll
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	renewed, err := cl.Heartbeat(rctx, me, 200*time.Millisecond, []string{lease})
	cancel()
	if err != nil || !slices.Equal(renewed, []string{lease}) {
		t.Fatalf("renewal during a poll: %v %v; want the lease renewed without waiting", renewed, err)
	}
	// Let the lease expire, then try to take it while the poll runs.
	until(t, 10*time.Second, "the lease expires", func() bool {
		ls, err := cl.Leases(ctx)
		return err == nil && len(ls) == 1 && !ls[0].Live
	})
	if _, ok, err := acquire1(ctx, cl, other, lease, "v1", tok); ok || err != nil {
		t.Fatalf("acquire during the poll: ok %v err %v; want it left for later", ok, err)
	}
	close(finish)
	if err := <-polled; err != nil {
		t.Fatalf("the poll under its own token: %v", err)
	}
	next, ok, err := acquire1(ctx, cl, other, lease, "v1", tok)
	if err != nil || !ok || next != tok+1 {
		t.Fatalf("acquire after the poll: %d %v %v; want token %d", next, ok, err, tok+1)
	}
	if got, err := cl.Heartbeat(ctx, me, time.Minute, []string{lease}); err != nil || len(got) != 0 {
		t.Errorf("the old holder renewed %v (%v) after the lease changed hands", got, err)
	}
}

// TestClusterBackendTokens: the token grows with every change of holder,
// an acquisition must expect the token it saw, and a lease held by a
// live member is not taken.
func TestClusterBackendTokens(t *testing.T) {
	st := openTest(t)
	cl := st.Cluster()
	ctx := t.Context()
	lease := cluster.ShardLease("status", 3)
	hs := []cluster.Holder{{Member: "a", ID: "1"}, {Member: "a", ID: "2"}, {Member: "b", ID: "1"}}
	for _, h := range hs {
		if err := cl.Join(ctx, cluster.Member{Holder: h, Version: "x"}, time.Minute, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := acquire1(ctx, cl, cluster.Holder{Member: "nobody", ID: "0"}, lease, "v1", 0); ok || err != nil {
		t.Fatalf("a holder that never joined acquired: %v %v", ok, err)
	}
	var want int64
	for i := range 6 {
		h := hs[i%len(hs)]
		tok, ok, err := acquire1(ctx, cl, h, lease, "v1", want)
		if err != nil || !ok || tok != want+1 {
			t.Fatalf("round %d: acquire by %s: %d %v %v; want token %d", i, h, tok, ok, err, want+1)
		}
		next := hs[(i+1)%len(hs)]
		if _, ok, _ := acquire1(ctx, cl, next, lease, "v1", tok); ok {
			t.Fatalf("round %d: %s took a lease %s holds", i, next, h)
		}
		if _, ok, _ := acquire1(ctx, cl, next, lease, "v1", want); ok {
			t.Fatalf("round %d: acquired expecting a stale token", i)
		}
		if err := cl.Release(ctx, h, []string{lease}, cluster.ReasonRebalanced); err != nil {
			t.Fatal(err)
		}
		ls, err := cl.Leases(ctx)
		if err != nil || len(ls) != 1 || ls[0].Live || ls[0].Released != cluster.ReasonRebalanced || ls[0].Holder != h {
			t.Fatalf("round %d: after release: %+v %v", i, ls, err)
		}
		want = tok
	}
	if _, err := cl.Heartbeat(ctx, cluster.Holder{Member: "nobody", ID: "0"}, time.Minute, nil); !errors.Is(err, cluster.ErrNotMember) {
		t.Errorf("heartbeat of a stranger: %v; want ErrNotMember", err)
	}
}

// TestClusterRollingConfigChange: while a member runs the holder's config
// of a source, the source's lease goes only to such members; once none is
// left, to a member on the new config.
func TestClusterRollingConfigChange(t *testing.T) {
	st := openTest(t)
	lease := cluster.SourceLease("videos")
	v1 := []cluster.Source{{Name: "videos", Config: "v1"}}
	a := startMember(t, st.Cluster(), "a", v1)
	until(t, 30*time.Second, "a holds the lease", func() bool { _, ok := a.c.Holds(lease); return ok })
	// b, on the new config, sorts before c: by the shares alone the
	// lease would be b's.
	b := startMember(t, st.Cluster(), "b", []cluster.Source{{Name: "videos", Config: "v2"}})
	c := startMember(t, st.Cluster(), "c", v1)
	until(t, 30*time.Second, "three members", func() bool { return len(c.c.Members()) == 3 && len(b.c.Members()) == 3 })
	if err := a.c.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	until(t, 30*time.Second, "c, on the holder's config, takes the lease", func() bool { _, ok := c.c.Holds(lease); return ok })
	if _, ok := b.c.Holds(lease); ok {
		t.Error("b, on another config, holds the lease too")
	}
	if err := c.c.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	until(t, 30*time.Second, "b takes the lease once no member runs v1", func() bool { _, ok := b.c.Holds(lease); return ok })
	ls, err := st.Cluster().Leases(t.Context())
	if err != nil || len(ls) != 1 || ls[0].Config != "v2" {
		t.Errorf("leases %+v %v; want the lease under v2", ls, err)
	}
}

// TestClusterAcquireBatch: one call claims many leases and gets those
// free with the token expected, not one held by another member or seen
// with a stale token.
func TestClusterAcquireBatch(t *testing.T) {
	st := openTest(t)
	cl := st.Cluster()
	ctx := t.Context()
	a, b := cluster.Holder{Member: "a", ID: "1"}, cluster.Holder{Member: "b", ID: "1"}
	for _, h := range []cluster.Holder{a, b} {
		if err := cl.Join(ctx, cluster.Member{Holder: h, Version: "x"}, time.Minute, nil); err != nil {
			t.Fatal(err)
		}
	}
	held, stale := cluster.SourceLease("held"), cluster.SourceLease("stale")
	if _, ok, err := acquire1(ctx, cl, a, held, "v1", 0); !ok || err != nil {
		t.Fatal(ok, err)
	}
	tok, ok, err := acquire1(ctx, cl, a, stale, "v1", 0)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := cl.Release(ctx, a, []string{stale}, cluster.ReasonRebalanced); err != nil {
		t.Fatal(err)
	}
	claims := []cluster.Claim{{Name: held, Config: "v1", Expect: 1}, {Name: stale, Config: "v1", Expect: tok - 1}}
	for i := range cluster.Shards {
		claims = append(claims, cluster.Claim{Name: cluster.ShardLease("w", i), Config: "v1"})
	}
	got, err := cl.Acquire(ctx, b, claims)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != cluster.Shards || got[held] != 0 || got[stale] != 0 {
		t.Errorf("acquired %d leases (held: %d, stale: %d); want the %d shards only", len(got), got[held], got[stale], cluster.Shards)
	}
	for name, token := range got {
		if token != 1 {
			t.Errorf("%s: token %d; want 1 for a first holder", name, token)
		}
	}
}
