package notifier

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
)

// A delivery mid-schedule survives closing everything: a new Store and
// Notifier on the same directory retry it at its scheduled time with the
// same webhook-id. A request in flight at close is cut off after the grace
// period, not recorded, and sent after the restart.
func TestRestartMidSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		b := newBubbleReceiver(t)
		var mu sync.Mutex
		var failID, hangID string
		inFlight := make(chan struct{}, 1)
		b.rc.setAnswer(func(h *hit, _ http.ResponseWriter, r *http.Request) int {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case h.ID == failID && h.N == 1:
				return http.StatusInternalServerError
			case h.ID == hangID && h.N == 1:
				inFlight <- struct{}{}
				mu.Unlock()
				<-r.Context().Done() // hangs until pollrelay gives up on it
				mu.Lock()
				return http.StatusServiceUnavailable
			}
			return 0
		})
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			ordering: none
			retry: {schedule: [2m]}`)
		e := start(t, dir, subs, Options{Transport: b.tr, Grace: 5e9})

		mu.Lock()
		failed := e.emit("task.ready", "a")
		failID = failed.ID
		mu.Unlock()
		first := b.rc.next(t)
		scheduled := e.waitState("app", failed.ID, store.Retrying).NextAt

		mu.Lock()
		hung := e.emit("task.ready", "b")
		hangID = hung.ID
		mu.Unlock()
		<-inFlight
		e.stop() // waits the 5s grace, then cancels the hung request

		if d := e.delivery2(dir, hung.ID); d.State != store.Pending || d.Attempts != 0 {
			t.Fatalf("the request cut off by shutdown was recorded: %+v", d)
		}

		e = start(t, dir, subs, Options{Transport: b.tr})
		var retry hit
		for range 3 { // the hung one's second request, the hit that hung, and the retry
			h := b.rc.next(t)
			if h.ID == failed.ID {
				retry = h
				break
			}
		}
		if !retry.At.Equal(scheduled) {
			t.Errorf("retry at %s, scheduled for %s (first attempt %s)", retry.At, scheduled, first.At)
		}
		if retry.ID != first.ID {
			t.Errorf("webhook-id changed across the restart: %s then %s", first.ID, retry.ID)
		}
		e.waitState("app", failed.ID, store.Delivered)
		d := e.waitState("app", hung.ID, store.Delivered)
		if d.Attempts != 1 {
			t.Errorf("in-flight delivery after restart: %+v, want one recorded attempt", d)
		}
		if as := e.attempts(failed.ID); len(as) != 2 || as[0].Status != 500 || as[1].Status != 204 {
			t.Errorf("attempt log across the restart: %+v", as)
		}
	})
}

// delivery2 reads a delivery from a store that is closed, by opening it.
func (e *env) delivery2(dir, eventID string) *store.Delivery {
	e.t.Helper()
	st, err := badger.Open(badger.Options{Path: dir})
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	var d *store.Delivery
	if err := st.View(func(t store.Txn) error {
		var err error
		d, err = t.Delivery("app", eventID)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return d
}
