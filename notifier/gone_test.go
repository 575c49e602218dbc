package notifier

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// A 410 disables the subscription before anything more is sent to it: the
// next requests go out ahead of a batch's commit only when every attempt
// in it succeeded, because a failure may disable the subscription.
func TestGoneSendsNothingMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleReceiver(t)
		hold := make(chan struct{})
		b.rc.setAnswer(func(h *hit, _ http.ResponseWriter, _ *http.Request) int {
			if h.Env.Data.ID == "a" {
				<-hold
			}
			return http.StatusGone
		})
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			retry: {schedule: [1s]}
			max_in_flight: 1`)
		e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
		first := e.emit("task.ready", "a")
		synctest.Wait()
		second := e.emit("task.ready", "b")
		synctest.Wait()
		close(hold)
		e.waitState("app", first.ID, store.Retrying)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if hits := b.rc.all(); len(hits) != 1 {
			t.Fatalf("%d requests after a 410, want 1", len(hits))
		}
		if d := e.delivery("app", second.ID); d.State != store.Pending || d.Attempts != 0 {
			t.Errorf("the next delivery is %s after %d attempts, want pending and untouched", d.State, d.Attempts)
		}
	})
}
