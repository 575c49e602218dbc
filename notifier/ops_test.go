package notifier

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// A delivery is dead-lettered after its last attempt and sent again by
// Redeliver, dead or delivered, with the same webhook-id and the attempt
// log going on.
func TestDeadLetterThenRedeliver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleReceiver(t)
		b.rc.setAnswer(func(h *hit, _ http.ResponseWriter, _ *http.Request) int {
			if h.N == 1 {
				return http.StatusInternalServerError
			}
			return 0
		})
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			events: ['task.*']
			retry: {schedule: []}`)
		e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
		ev := e.emit("task.ready", "a")
		e.waitState("app", ev.ID, store.Dead)
		synctest.Wait()
		if st, _ := e.n.Stats("app"); st.DeadCount != 1 || e.gauge("app", "dead") != 1 {
			t.Fatalf("after dead-lettering: %+v, gauge %v", st, e.gauge("app", "dead"))
		}

		if n, err := e.n.Redeliver(t.Context(), ev.ID); err != nil || n != 1 {
			t.Fatalf("Redeliver(dead) = %d, %v", n, err)
		}
		d := e.waitState("app", ev.ID, store.Delivered)
		if d.Attempts != 2 || d.Round != 1 {
			t.Errorf("after redelivery: %+v, want attempts 2, round 1", d)
		}
		synctest.Wait()
		if e.gauge("app", "dead") != 0 {
			t.Errorf("dead gauge %v after redelivery", e.gauge("app", "dead"))
		}

		// Delivered ones can be redelivered too.
		if n, err := e.n.Redeliver(t.Context(), ev.ID); err != nil || n != 1 {
			t.Fatalf("Redeliver(delivered) = %d, %v", n, err)
		}
		synctest.Wait()
		e.waitState("app", ev.ID, store.Delivered)
		hits := b.rc.all()
		if len(hits) != 3 || hits[0].ID != ev.ID || hits[1].ID != ev.ID || hits[2].ID != ev.ID {
			t.Fatalf("requests: %d, want 3 with webhook-id %s", len(hits), ev.ID)
		}
		as := e.attempts(ev.ID)
		if len(as) != 3 || as[0].N != 1 || as[1].N != 2 || as[2].N != 3 || as[0].Outcome != OutcomeHTTPError || as[2].Outcome != OutcomeSuccess {
			t.Errorf("attempt log: %+v", as)
		}

		if _, err := e.n.Redeliver(t.Context(), "evt_unknown"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Redeliver(unknown) = %v, want ErrNotFound", err)
		}

		// An event nobody wanted is fanned out again to whoever wants it now.
		other := e.emit("video.ready", "v")
		synctest.Wait()
		if d := e.delivery("app", other.ID); d != nil {
			t.Fatalf("app got an event it does not subscribe to: %+v", d)
		}
		late := parseSubs(t, `name: late
			url: `+bubbleURL+`
			secret: `+testSecret+`
			events: ['video.*']`)
		e.n.SetSubscriptions(append(subs, late...))
		if n, err := e.n.Redeliver(t.Context(), other.ID); err != nil || n != 1 {
			t.Fatalf("Redeliver(no deliveries) = %d, %v", n, err)
		}
		e.waitState("late", other.ID, store.Delivered)
		if d := e.delivery("app", other.ID); d != nil {
			t.Errorf("fan-out on redelivery reached a subscription that does not want the event")
		}
	})
}

// Ping sends a pollrelay.ping to one subscription only, through the normal
// pipeline, and logs the event.
func TestPing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleReceiver(t)
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret,
			`name: other
			url: `+bubbleURL+`
			secret: `+testSecret)
		e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
		id, err := e.n.Ping(t.Context(), "app")
		if err != nil {
			t.Fatal(err)
		}
		h := b.rc.next(t)
		var env struct {
			Type string `json:"type"`
			Data struct {
				Source string `json:"source"`
				ID     string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(h.Body, &env); err != nil {
			t.Fatal(err)
		}
		if h.ID != id || env.Type != PingType || env.Data.Source != PingSource || env.Data.ID != "app" {
			t.Errorf("ping: webhook-id %s (want %s), body %s", h.ID, id, h.Body)
		}
		e.waitState("app", id, store.Delivered)
		synctest.Wait()
		if d := e.delivery("other", id); d != nil || len(b.rc.all()) != 1 {
			t.Errorf("the ping reached another subscription")
		}
		err = e.st.View(func(t store.Txn) error {
			ev, err := t.Event(id)
			if err == nil && (ev == nil || ev.Type != PingType) {
				err = errors.New("ping not in the event log")
			}
			return err
		})
		if err != nil {
			t.Error(err)
		}
		if _, err := e.n.Ping(t.Context(), "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Ping(unknown) = %v, want ErrNotFound", err)
		}
	})
}

// Replay re-sends logged events of a time range and types to one
// subscription with their original webhook-ids.
func TestReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleReceiver(t)
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			events: ['task.*']`)
		e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
		t0 := time.Now()
		a := e.emit("task.ready", "a")
		time.Sleep(time.Minute)
		bf := e.emit("task.failed", "b")
		e.emit("video.ready", "c") // not wanted by app
		time.Sleep(time.Minute)
		d := e.emit("task.ready", "d")
		if _, err := e.n.Ping(t.Context(), "app"); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{a.ID, bf.ID, d.ID} {
			e.waitState("app", id, store.Delivered)
		}
		synctest.Wait()
		before := len(b.rc.all())

		replay := func(since, until time.Time, types ...string) []string {
			t.Helper()
			n, err := e.n.Replay(t.Context(), "app", since, until, types)
			if err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			hits := b.rc.all()[before:]
			before += len(hits)
			if len(hits) != n {
				t.Fatalf("Replay said %d, receiver got %d", n, len(hits))
			}
			var ids []string
			for _, h := range hits {
				ids = append(ids, h.ID)
			}
			slices.Sort(ids) // different items go concurrently, in any order
			return ids
		}
		if got := replay(t0.Add(30*time.Second), t0.Add(90*time.Second)); fmtList(got) != fmtList([]string{bf.ID}) {
			t.Errorf("replay of the middle minute sent %v, want only %s", got, bf.ID)
		}
		if got := replay(time.Time{}, time.Time{}, "task.rea*"); fmtList(got) != fmtList([]string{a.ID, d.ID}) {
			t.Errorf("replay of task.rea* sent %v, want %s and %s", got, a.ID, d.ID)
		}
		if d := e.delivery("app", a.ID); d.Attempts != 2 {
			t.Errorf("replayed delivery: %+v, want its attempts to go on", d)
		}

		// A subscription added later gets new deliveries.
		late := parseSubs(t, `name: late
			url: `+bubbleURL+`
			secret: `+testSecret)
		e.n.SetSubscriptions(append(subs, late...))
		n, err := e.n.Replay(t.Context(), "late", t0, time.Time{}, nil)
		if err != nil || n != 4 { // a, b, c, d: late wants everything; pings are not replayed
			t.Fatalf("Replay(late) = %d, %v; want 4", n, err)
		}

		if _, err := e.n.Replay(t.Context(), "app", t0, t0.Add(-time.Second), nil); err == nil {
			t.Error("Replay accepted until before since")
		}
		if _, err := e.n.Replay(t.Context(), "app", t0, time.Time{}, []string{"task.["}); err == nil {
			t.Error("Replay accepted a bad glob")
		}
		if _, err := e.n.Replay(t.Context(), "nope", t0, time.Time{}, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("Replay(unknown) = %v, want ErrNotFound", err)
		}
	})
}

// A ping to a vendor-shaped subscription keeps pollrelay's own envelope,
// so an app never reads it as a transition; with test_event it goes out as
// the vendor's test event, reshaped like any other.
func TestPingShape(t *testing.T) {
	const csm = `payload: '{type: "session_status_changed", payload: {session_id: .data.id, old_status: .data.previous, new_status: .data.current}}'`
	for _, c := range []struct{ name, extra, wantType, wantBody string }{
		{"vendor payload, no test event", csm, PingType, `"data":{"source":"pollrelay"`},
		{"test event named", "test_event: LOADER_PING", "LOADER_PING", `"data":{"source":"pollrelay"`},
		{"test event through the payload", "payload: '{type: .type, event: .type, id: .data.id}'\ntest_event: webhook.test", "webhook.test", `"event":"webhook.test","id":"app"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBubbleReceiver(t)
				subs := parseSubs(t, "name: app\nurl: "+bubbleURL+"\nsecret: "+testSecret+"\n"+c.extra)
				e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
				if _, err := e.n.Ping(t.Context(), "app"); err != nil {
					t.Fatal(err)
				}
				h := b.rc.next(t)
				var env struct{ Type string }
				if err := json.Unmarshal(h.Body, &env); err != nil || env.Type != c.wantType || !strings.Contains(string(h.Body), c.wantBody) {
					t.Errorf("ping body %s, want type %s and %s", h.Body, c.wantType, c.wantBody)
				}
			})
		})
	}
}
