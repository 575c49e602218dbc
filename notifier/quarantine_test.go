package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
)

// quarantined lists the store's quarantine records.
func (e *env) quarantined() []*store.Quarantined {
	e.t.Helper()
	var qs []*store.Quarantined
	if err := e.st.View(func(t store.Txn) error {
		return t.QuarantineRecords("", func(q *store.Quarantined) bool { qs = append(qs, q); return true })
	}); err != nil {
		e.t.Fatal(err)
	}
	return qs
}

// quarantineCount reads pollrelay_quarantined_total{kind}.
func (e *env) quarantineCount(kind string) float64 {
	for _, c := range e.st.Collectors() {
		if cv, ok := c.(*prometheus.CounterVec); ok {
			if d := cv.WithLabelValues(kind).Desc().String(); strings.Contains(d, "pollrelay_quarantined_total") {
				return testutil.ToFloat64(cv.WithLabelValues(kind))
			}
		}
	}
	e.t.Fatal("no pollrelay_quarantined_total")
	return 0
}

// Events whose item ids are too long for a key (stored by a version
// without the id limit) no longer stop every delivery: the ordered
// subscription's deliveries of them are quarantined and counted, the
// unordered one still gets them, and every other event of every source
// reaches both, before and after a restart.
func TestGiantIDsDoNotStallDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		b := newBubbleReceiver(t)
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret, `name: plain
			url: `+bubbleURL+`
			secret: `+testSecret+`
			ordering: none`)
		e := start(t, dir, subs, Options{Transport: b.tr})
		giant := func(n int) *event.Event {
			return e.put(&event.Event{Type: "big.created", Kind: event.Created, Source: "big", ItemID: strings.Repeat("g", n),
				Current: json.RawMessage(`"x"`)})
		}
		var normal []*event.Event
		normal = append(normal, e.emit("task.ready", "a"))
		g1 := giant(65000)
		normal = append(normal, e.emit("task.ready", "b"))
		g2 := giant(70000)
		normal = append(normal, e.put(&event.Event{Type: "other.created", Kind: event.Created, Source: "other", ItemID: "o1"}))
		for _, ev := range normal {
			e.waitState("app", ev.ID, store.Delivered)
			e.waitState("plain", ev.ID, store.Delivered)
		}
		e.waitState("plain", g1.ID, store.Delivered)
		e.waitState("plain", g2.ID, store.Delivered)
		synctest.Wait()
		if d := e.delivery("app", g1.ID); d != nil {
			t.Errorf("ordered delivery of a giant id stored: %+v", d)
		}
		qs := e.quarantined()
		if len(qs) != 2 {
			t.Fatalf("quarantine: %+v, want the two ordered deliveries", qs)
		}
		for _, q := range qs {
			if q.Kind != store.QuarantineDelivery || q.Subscription != "app" || (q.EventID != g1.ID && q.EventID != g2.ID) || !strings.Contains(q.Reason, "limit") {
				t.Errorf("quarantine record %+v", q)
			}
		}
		if n := e.quarantineCount(store.QuarantineDelivery); n != 2 {
			t.Errorf("pollrelay_quarantined_total{kind=delivery} = %v, want 2", n)
		}

		// A retry fails while the subscription still orders by resource,
		// and delivers once it no longer does.
		if err := e.n.RetryQuarantined(context.Background(), qs[0].ID); !errors.Is(err, ErrStillBad) {
			t.Errorf("retry of a delivery still too long to order: %v, want ErrStillBad", err)
		}
		unordered := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			ordering: none`, `name: plain
			url: `+bubbleURL+`
			secret: `+testSecret+`
			ordering: none`)
		e.n.SetSubscriptions(unordered)
		if err := e.n.RetryQuarantined(context.Background(), qs[0].ID); err != nil {
			t.Fatalf("retry once unordered: %v", err)
		}
		e.waitState("app", qs[0].EventID, store.Delivered)
		e.n.SetSubscriptions(subs)

		e.stop()
		e = start(t, dir, subs, Options{Transport: b.tr})
		after := e.emit("task.ready", "c")
		g3 := giant(65000)
		e.waitState("app", after.ID, store.Delivered)
		e.waitState("plain", g3.ID, store.Delivered)
		if qs := e.quarantined(); len(qs) != 2 {
			t.Errorf("after the restart: %d quarantine records, want 2 (one retried, one new)", len(qs))
		}
	})
}

// An event record that cannot be decoded, and a queued delivery record
// that cannot be, are quarantined; the events beside them are delivered.
// A retry of the event puts it back in the outbox.
func TestPoisonedRecordsAreQuarantined(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleReceiver(t)
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			retry: {schedule: [1h]}`)
		e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
		first := e.emit("task.ready", "a")
		e.waitState("app", first.ID, store.Delivered)

		bad := event.NewID(e.n.now())
		// Logged, broken, then put in the outbox: fan-out never sees it whole.
		if err := e.st.Update(func(t store.Txn) error {
			return t.LogEvent(&event.Event{ID: bad, Type: "task.ready", Source: "tasks", ItemID: "x"})
		}); err != nil {
			t.Fatal(err)
		}
		corruptEvent(t, e.st, bad)
		if err := e.st.Update(func(t store.Txn) error { return t.ReturnToOutbox(bad) }); err != nil {
			t.Fatal(err)
		}
		next := e.emit("task.ready", "b")
		e.waitState("app", next.ID, store.Delivered)
		qs := e.quarantined()
		if len(qs) != 1 || qs[0].Kind != store.QuarantineEvent || qs[0].EventID != bad {
			t.Fatalf("quarantine %+v, want the undecodable event", qs)
		}
		if err := e.n.RetryQuarantined(context.Background(), "qr_unknown"); !errors.Is(err, ErrNotFound) {
			t.Errorf("retry of an unknown id: %v", err)
		}
		// Still undecodable: a retry puts it back, and fan-out sets it aside again.
		if err := e.n.RetryQuarantined(context.Background(), qs[0].ID); err != nil {
			t.Fatal(err)
		}
		after := e.emit("task.ready", "c")
		e.waitState("app", after.ID, store.Delivered)
		if qs := e.quarantined(); len(qs) != 1 || qs[0].EventID != bad || e.quarantineCount(store.QuarantineEvent) != 2 {
			t.Errorf("after the retry: %d records, counted %v; want the event set aside a second time", len(qs), e.quarantineCount(store.QuarantineEvent))
		}
	})
}

// corruptEvent overwrites an event's record with bytes that do not
// decode, as a damaged disk would.
func corruptEvent(t *testing.T, st store.Store, id string) {
	t.Helper()
	if err := st.(*badger.Store).DB().Update(func(txn *bdg.Txn) error { return txn.Set([]byte("e/"+id), []byte(`{"id": 7`)) }); err != nil {
		t.Fatal(err)
	}
}

// corruptDelivery overwrites a delivery's record with bytes that do not
// decode.
func corruptDelivery(t *testing.T, st store.Store, sub, id string) {
	t.Helper()
	if err := st.(*badger.Store).DB().Update(func(txn *bdg.Txn) error {
		return txn.Set([]byte("d/"+sub+"\x00"+id), []byte(`{"state": 3`))
	}); err != nil {
		t.Fatal(err)
	}
}

// A queued delivery whose record cannot be decoded is quarantined when it
// falls due, and the event of the same item that waited behind it goes
// out; so does everything else, and a restart with such a record starts.
func TestUndecodableDeliveryIsQuarantined(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		b := newBubbleReceiver(t)
		var failID string
		b.rc.setAnswer(func(h *hit, _ http.ResponseWriter, _ *http.Request) int {
			if h.ID == failID {
				return http.StatusInternalServerError
			}
			return 0
		})
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			retry: {schedule: [1m, 1m]}`)
		e := start(t, dir, subs, Options{Transport: b.tr})
		x := e.put(&event.Event{Type: "task.ready", Source: "tasks", ItemID: "p"})
		failID = x.ID
		e.waitState("app", x.ID, store.Retrying)
		z := e.emit("task.done", "p") // waits behind x
		e.waitState("app", z.ID, store.Waiting)
		corruptDelivery(t, e.st, "app", x.ID)
		time.Sleep(2 * time.Minute) // x falls due
		e.waitState("app", z.ID, store.Delivered)
		other := e.emit("task.ready", "q")
		e.waitState("app", other.ID, store.Delivered)
		qs := e.quarantined()
		if len(qs) != 1 || qs[0].Kind != store.QuarantineDelivery || qs[0].EventID != x.ID {
			t.Fatalf("quarantine %+v, want x's delivery", qs)
		}

		// A record broken while stopped: the start quarantines it.
		y := e.put(&event.Event{Type: "task.ready", Source: "tasks", ItemID: "r"})
		failID = y.ID
		e.waitState("app", y.ID, store.Retrying)
		e.stop()
		st, err := badger.Open(badger.Options{Path: dir})
		if err != nil {
			t.Fatal(err)
		}
		corruptDelivery(t, st, "app", y.ID)
		st.Close()
		e = start(t, dir, subs, Options{Transport: b.tr})
		after := e.emit("task.ready", "s")
		e.waitState("app", after.ID, store.Delivered)
		if qs := e.quarantined(); len(qs) != 2 {
			t.Errorf("after the restart: %d quarantine records, want 2", len(qs))
		}
	})
}

// An outcome that cannot be recorded because its delivery's record broke
// while the request was out does not keep the batch unrecorded (and every
// send stopped): the batch is recorded in parts and that delivery is
// quarantined.
func TestUnrecordableOutcomeIsQuarantined(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleReceiver(t)
		hold := make(chan struct{})
		held := make(chan struct{}, 1)
		var holdID string
		b.rc.setAnswer(func(h *hit, _ http.ResponseWriter, _ *http.Request) int {
			if h.ID == holdID {
				held <- struct{}{}
				<-hold
			}
			return 0
		})
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			ordering: none`)
		e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
		holdID = event.NewID(time.Now())
		x := e.put(&event.Event{ID: holdID, Type: "task.ready", Source: "tasks", ItemID: "p"})
		<-held
		corruptDelivery(t, e.st, "app", x.ID)
		close(hold)
		synctest.Wait()
		next := e.emit("task.ready", "q")
		e.waitState("app", next.ID, store.Delivered)
		qs := e.quarantined()
		if len(qs) != 1 || qs[0].EventID != x.ID || !strings.Contains(qs[0].Reason, "record outcome") {
			t.Fatalf("quarantine %+v, want x's delivery", qs)
		}
	})
}
