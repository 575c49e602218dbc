package notifier

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// With ordering: resource, a receiver failing item A's first event holds
// A's second event back; item B's events flow meanwhile. With ordering:
// none nothing waits.
func TestOrderingPerResource(t *testing.T) {
	for _, ordering := range []string{"resource", "none"} {
		t.Run(ordering, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBubbleReceiver(t)
				b.rc.setAnswer(func(h *hit, _ http.ResponseWriter, _ *http.Request) int {
					if h.Env.Data.ID == "A" && h.Env.Type == "task.first" && h.N == 1 {
						return http.StatusInternalServerError
					}
					return 0
				})
				subs := parseSubs(t, `name: app
					url: `+bubbleURL+`
					secret: `+testSecret+`
					ordering: `+ordering+`
					retry: {schedule: [10s]}`)
				e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
				a1, a2 := e.emit("task.first", "A"), e.emit("task.second", "A")
				b1, b2 := e.emit("task.first", "B"), e.emit("task.second", "B")

				e.waitState("app", b1.ID, store.Delivered)
				e.waitState("app", b2.ID, store.Delivered)
				synctest.Wait()
				sent := map[string]int{}
				for _, h := range b.rc.all() {
					sent[h.ID]++
				}
				if sent[a1.ID] != 1 {
					t.Fatalf("A's first event: %d attempts so far, want 1", sent[a1.ID])
				}
				a2d := e.delivery("app", a2.ID)
				switch ordering {
				case "resource":
					if sent[a2.ID] != 0 || a2d.State != store.Waiting {
						t.Fatalf("A's second event went ahead of the first (sent %d, %+v)", sent[a2.ID], a2d)
					}
					if st, _ := e.n.Stats("app"); st.QueueLength != 1 || st.RetryQueueLength != 1 {
						t.Errorf("stats: %+v, want A2 queued and A1 retrying", st)
					}
				case "none":
					if sent[a2.ID] != 1 || a2d.State != store.Delivered {
						t.Fatalf("ordering none: A's second event was held back (%+v)", a2d)
					}
				}

				// A's first event is retried after 10s±20%; its second follows.
				time.Sleep(15 * time.Second)
				e.waitState("app", a1.ID, store.Delivered)
				e.waitState("app", a2.ID, store.Delivered)
				var order []string
				for _, h := range b.rc.all() {
					if h.Env.Data.ID == "A" {
						order = append(order, h.Env.Type)
					}
				}
				want := "[task.first task.first task.second]"
				if ordering == "none" {
					// Both went at once, in either order; then the retry.
					slices.Sort(order[:2])
					want = "[task.first task.second task.first]"
				}
				if got := fmtList(order); got != want {
					t.Errorf("A's requests in order %s, want %s", got, want)
				}
			})
		})
	}
}

func fmtList(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// A redelivered event re-enters its resource's order: it waits for the
// resource's attempt in flight, then goes before the resource's later open
// events.
func TestRedeliverReentersResourceOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleReceiver(t)
		release := make(chan struct{})
		var a3 string
		var mu sync.Mutex
		b.rc.setAnswer(func(h *hit, _ http.ResponseWriter, r *http.Request) int {
			mu.Lock()
			id := a3
			mu.Unlock()
			if h.ID == id && h.N == 1 {
				select {
				case <-release:
				case <-r.Context().Done(): // a failed test shutting down
				}
				return http.StatusInternalServerError
			}
			return 0
		})
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			retry: {schedule: [10s]}`)
		e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
		a1 := e.emit("task.first", "A")
		e.waitState("app", a1.ID, store.Delivered)
		b.rc.next(t)

		mu.Lock()
		ev3 := e.emit("task.third", "A")
		a3 = ev3.ID
		mu.Unlock()
		synctest.Wait() // A3's first attempt is in flight

		if n, err := e.n.Redeliver(t.Context(), a1.ID); err != nil || n != 1 {
			t.Fatalf("Redeliver = %d, %v", n, err)
		}
		synctest.Wait()
		if n := len(b.rc.all()); n != 1 {
			t.Fatalf("A1 was redelivered while A3 was in flight (%d requests)", n)
		}
		close(release)
		e.waitState("app", a1.ID, store.Delivered)
		e.waitState("app", ev3.ID, store.Retrying)
		time.Sleep(15 * time.Second)
		e.waitState("app", ev3.ID, store.Delivered)
		var order []string
		for _, h := range b.rc.all() {
			order = append(order, h.Env.Type)
		}
		if got, want := fmtList(order), "[task.first task.third task.first task.third]"; got != want {
			t.Errorf("requests %s, want %s", got, want)
		}
		if d := e.delivery("app", a1.ID); d.Attempts != 2 || d.Round != 1 {
			t.Errorf("redelivered A1: %+v, want 2 attempts, round 1", d)
		}
	})
}

// max_in_flight caps concurrent requests per subscription.
func TestMaxInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleReceiver(t)
		release := make(chan struct{})
		var mu sync.Mutex
		cur, peak := 0, 0
		b.rc.setAnswer(func(_ *hit, _ http.ResponseWriter, r *http.Request) int {
			mu.Lock()
			cur++
			peak = max(peak, cur)
			mu.Unlock()
			select {
			case <-release:
			case <-r.Context().Done(): // a failed test shutting down
			}
			mu.Lock()
			cur--
			mu.Unlock()
			return 0
		})
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			ordering: none
			max_in_flight: 2`)
		e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
		var ids []string
		for _, item := range []string{"a", "b", "c", "d", "e"} {
			ids = append(ids, e.emit("task.ready", item).ID)
		}
		synctest.Wait()
		mu.Lock()
		inFlight := cur
		mu.Unlock()
		if inFlight != 2 {
			t.Fatalf("%d requests in flight, want max_in_flight = 2", inFlight)
		}
		close(release)
		for _, id := range ids {
			e.waitState("app", id, store.Delivered)
		}
		mu.Lock()
		defer mu.Unlock()
		if peak != 2 {
			t.Errorf("peak concurrency %d, want 2", peak)
		}
	})
}
