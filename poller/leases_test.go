package poller

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollrelay/pollrelay/cluster"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/internal/pgtest"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/postgres"
)

// TestPollOutlivingItsLeaseIsDiscarded: a member whose coordinator stops
// renewing (a paused process) while a poll is fetching loses the lease
// to another member; when the fetch ends, the poll's comparison is
// refused by the store's fence — no state, no event — and counted as
// fenced, and the new holder's token is larger.
func TestPollOutlivingItsLeaseIsDiscarded(t *testing.T) {
	st, err := postgres.Open(postgres.Options{URL: pgtest.URL(t), Schema: pgtest.Schema(t), Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	up := newTasks(map[string]string{"a": "queued"})
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	// Once block is set, a request waits for release before the upstream
	// answers it, with what it holds by then.
	var block atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if block.Load() {
			entered <- struct{}{}
			<-release
		}
		up.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	srcs := sources(t, `
  - name: tasks
    url: `+srv.URL+`/tasks
    interval: 1h
    timeout: 60s
    items: .data[]
    id: .id
    state: .status
`)
	const lease = 4 * time.Second
	reg := prometheus.NewRegistry()
	a := cluster.New(st.Cluster(), cluster.Options{Member: "a", Lease: lease})
	actx, pauseA := context.WithCancel(context.Background())
	aDone := make(chan struct{})
	go func() { defer close(aDone); a.Run(actx) }()
	m := NewManager(st, NewMetrics(reg), quietLogger(t))
	m.UseLeases(a, st.Fenced)
	m.Start(context.Background(), srcs)
	t.Cleanup(m.Stop)
	t.Cleanup(unblock) // before m.Stop, which waits for the poll
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.PollNow(ctx, "tasks"); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	old, ok := a.Holds(cluster.SourceLease("tasks"))
	if !ok {
		t.Fatal("a does not hold the lease after polling")
	}
	if got := m.Status()[0].Holder; got != "a" {
		t.Errorf("status shows holder %q, want a", got)
	}

	block.Store(true)
	polled := make(chan error, 1)
	go func() { polled <- m.PollNow(ctx, "tasks") }()
	<-entered
	up.set("a", "ready")
	pauseA()
	<-aDone
	b := cluster.New(st.Cluster(), cluster.Options{Member: "b", Lease: lease})
	b.SetSources(leaseSources(srcs))
	bctx, stopB := context.WithCancel(context.Background())
	defer stopB()
	go b.Run(bctx)
	var tok int64
	deadline := time.Now().Add(30 * time.Second)
	for ok = false; !ok; tok, ok = b.Holds(cluster.SourceLease("tasks")) {
		if time.Now().After(deadline) {
			t.Fatal("b never took the paused member's lease")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if tok <= old {
		t.Errorf("b's token %d is not above a's %d", tok, old)
	}
	unblock()
	err = <-polled
	if pe, ok := errors.AsType[*PollError](err); !ok || pe.Outcome != OutcomeFenced || !store.IsFenced(err) {
		t.Fatalf("the stale poll returned %v; want it fenced", err)
	}
	if n := counter(t, reg, "pollrelay_polls_total", map[string]string{"source": "tasks", "outcome": OutcomeFenced}); n != 1 {
		t.Errorf("fenced polls counted: %v, want 1", n)
	}
	var events int
	var state string
	err = st.View(func(tx store.Txn) error {
		it, err := tx.Item("tasks", "a")
		if err != nil || it == nil {
			return errors.Join(err, errors.New("item a is gone"))
		}
		state = string(it.State)
		return tx.Events("", func(*event.Event) bool { events++; return true })
	})
	if err != nil {
		t.Fatal(err)
	}
	if events != 0 || state != `"queued"` {
		t.Errorf("after the fenced poll: %d events, state %s; want none and the old state", events, state)
	}
}
