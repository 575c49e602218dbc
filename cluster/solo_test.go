package cluster

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSoloHoldsEverything: on Solo one member holds every lease under the
// constant token, hands a removed source's lease over once its subscriber
// is done with it, and releases everything on Leave.
func TestSoloHoldsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		b := NewSolo()
		c := New(b, Options{Member: "only", Lease: 15 * time.Second, Metrics: NewMetrics(reg)})
		c.SetSources([]Source{{Name: "list", Config: "1"}, {Name: "watch", Sharded: true, Config: "1"}})
		events := make(chan Event, 200)
		cancel := c.Subscribe(func(e Event) { events <- e })
		defer cancel()
		ctx, stop := context.WithCancel(t.Context())
		defer stop()
		go c.Run(ctx)
		synctest.Wait()
		if got := len(events); got != 1+Shards {
			t.Fatalf("%d events; want %d acquisitions", got, 1+Shards)
		}
		for range 1 + Shards {
			if e := <-events; !e.Held || e.Token != SoloToken {
				t.Fatalf("event %+v; want an acquisition under the Solo token", e)
			}
		}
		if tok, ok := c.Holds(ShardLease("watch", ShardOf("some-id"))); !ok || tok != SoloToken {
			t.Errorf("Holds(shard) = %d, %v", tok, ok)
		}
		if v := testutil.ToFloat64(c.metrics.held.WithLabelValues(KindShard)); v != Shards {
			t.Errorf("leases_held{kind=shard} = %v; want %d", v, Shards)
		}
		// A pause far longer than the lease loses nothing on Solo: the
		// step after it renews before it looks at the clock.
		time.Sleep(time.Minute)
		synctest.Wait()
		if _, ok := c.Holds(SourceLease("list")); !ok {
			t.Error("Solo lost its lease over a long pause")
		}
		if len(events) != 0 {
			t.Errorf("events over a pause: %+v", <-events)
		}

		c.SetSources([]Source{{Name: "watch", Sharded: true, Config: "1"}})
		synctest.Wait()
		e := <-events
		if e.Held || e.Lease != SourceLease("list") || e.Reason != ReasonReleased {
			t.Fatalf("after removing the source: %+v; want its lease released", e)
		}
		if _, ok := c.Holds(e.Lease); ok {
			t.Error("a lease being handed over still reports held")
		}
		if l := soloLease(b, e.Lease); !l.Live {
			t.Error("released before the subscriber was done")
		}
		e.Done()
		synctest.Wait()
		if l := soloLease(b, e.Lease); l.Live || l.Released != ReasonReleased {
			t.Errorf("after Done: %+v; want released", l)
		}

		if err := c.Leave(t.Context()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := len(events); got != Shards {
			t.Errorf("%d events on Leave; want %d", got, Shards)
		}
		if ms, _ := b.Members(t.Context()); len(ms) != 0 {
			t.Errorf("members after Leave: %v", ms)
		}
	})
}

func soloLease(b *Solo, name string) Lease {
	ls, _ := b.Leases(context.Background())
	for _, l := range ls {
		if l.Name == name {
			return l
		}
	}
	return Lease{}
}

func TestParseLease(t *testing.T) {
	for _, tc := range []struct {
		name, kind, source string
		shard              int
		ok                 bool
	}{
		{SourceLease("a-b_c"), KindSource, "a-b_c", -1, true},
		{ShardLease("w", 7), KindShard, "w", 7, true},
		{ShardLease("w", 63), KindShard, "w", 63, true},
		{"shard/w/64", "", "", 0, false},
		{"shard/w", "", "", 0, false},
		{"source/", "", "", 0, false},
		{"other", "", "", 0, false},
	} {
		kind, src, shard, ok := ParseLease(tc.name)
		if kind != tc.kind || src != tc.source || shard != tc.shard || ok != tc.ok {
			t.Errorf("ParseLease(%q) = %q %q %d %v", tc.name, kind, src, shard, ok)
		}
	}
}

func TestShardOfSpreads(t *testing.T) {
	var seen [Shards]int
	for i := range 6400 {
		seen[ShardOf(time.Duration(i).String())]++
	}
	for s, n := range seen {
		if n == 0 {
			t.Errorf("shard %d got none of 6400 ids", s)
		}
	}
	// FNV-1a 32 of "a" is 0xe40c292c: the shard is part of the contract
	// every member computes alike.
	if got := ShardOf("a"); got != 0xe40c292c%Shards {
		t.Errorf("ShardOf(a) = %d", got)
	}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	if n, _ := testutil.GatherAndCount(reg, "pollrelay_lease_handoffs_total"); n != len(Reasons) {
		t.Errorf("%d handoff series at start; want one per reason", n)
	}
}
