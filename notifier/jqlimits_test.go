package notifier

import (
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
)

// TestPayloadOverALimitIsDeadAtOnce: a payload program that runs away
// fails its delivery with payload_error, dead at once (the same program on
// the same envelope fails the same way), while another subscription's
// delivery of the same event goes through.
func TestPayloadOverALimitIsDeadAtOnce(t *testing.T) {
	for name, payload := range map[string]string{
		"memory": `def f: [f]; f`,
		"cpu":    `def f: f; f`,
		"repeat": `"x" * 1e9`,
	} {
		t.Run(name, func(t *testing.T) {
			rc := newReceiver()
			srv := httptest.NewServer(rc)
			defer srv.Close()
			subs := parseSubs(t,
				"name: bomb\nurl: "+srv.URL+"/bomb\nsecret: "+testSecret+"\npayload: '"+payload+"'",
				"name: app\nurl: "+srv.URL+"/app\nsecret: "+testSecret)
			e := start(t, t.TempDir(), subs, Options{})
			ev := e.emit("task.ready", "a")
			d := e.waitState("bomb", ev.ID, store.Dead)
			if d.Attempts != 1 || !strings.Contains(d.LastError, "payload") || !strings.Contains(d.LastError, "limit") {
				t.Errorf("dead delivery %+v, want one attempt failed by a limit", d)
			}
			for _, a := range e.attempts(ev.ID) {
				if a.Subscription == "bomb" && a.Outcome != OutcomePayload {
					t.Errorf("attempt %+v, want payload_error", a)
				}
			}
			e.waitState("app", ev.ID, store.Delivered)
		})
	}
}

// slowPayload is a payload that never finishes, with a deadline far off so
// only a cancellation can end it.
func slowPayload(t *testing.T) *jqexpr.Expr {
	l := jqexpr.DefaultLimits
	l.Timeout = time.Hour
	e, err := jqexpr.CompileWithLimits(`def f: f; f`, l)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func waitEvaluating(t *testing.T, want bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for (jqexpr.Running() > 0) != want {
		if time.Now().After(deadline) {
			t.Fatalf("evaluations running: %d, want running=%v", jqexpr.Running(), want)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// TestShutdownMidEvaluationLeavesDeliveryDue: an evaluation cut off by
// shutdown is not an outcome of the payload: nothing is recorded and the
// delivery is still due after the restart.
func TestShutdownMidEvaluationLeavesDeliveryDue(t *testing.T) {
	subs := parseSubs(t, "name: app\nurl: http://127.0.0.1:9/\nsecret: "+testSecret+"\npayload: '{x: .type}'")
	subs[0].Payload = slowPayload(t)
	dir := t.TempDir()
	e := start(t, dir, subs, Options{Grace: 10 * time.Millisecond})
	ev := e.emit("task.ready", "a")
	waitEvaluating(t, true)
	e.stop()
	waitEvaluating(t, false)

	st, err := badger.Open(badger.Options{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var d *store.Delivery
	var as []store.Attempt
	if err := st.View(func(tx store.Txn) error {
		if d, err = tx.Delivery("app", ev.ID); err != nil {
			return err
		}
		as, err = tx.Attempts(ev.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if d == nil || !d.Queued() || d.Attempts != 0 || len(as) != 0 {
		t.Fatalf("after shutdown: delivery %+v, attempts %+v; want it due and untried", d, as)
	}
}

// TestChangingSubscriptionStopsItsEvaluation: removing a subscription
// stops its payload's evaluation at once, leaving the delivery as it was;
// changing the payload does too, and the delivery is built again with the
// new program.
func TestChangingSubscriptionStopsItsEvaluation(t *testing.T) {
	rc := newReceiver()
	srv := httptest.NewServer(rc)
	defer srv.Close()
	subs := parseSubs(t, "name: app\nurl: "+srv.URL+"\nsecret: "+testSecret+"\npayload: '{x: .type}'")
	fixed := parseSubs(t, "name: app\nurl: "+srv.URL+"\nsecret: "+testSecret+"\npayload: '{fixed: .type}'")
	subs[0].Payload = slowPayload(t)
	e := start(t, t.TempDir(), subs, Options{})
	ev := e.emit("task.ready", "a")
	waitEvaluating(t, true)

	e.n.SetSubscriptions(nil)
	waitEvaluating(t, false)
	if d := e.delivery("app", ev.ID); d == nil || !d.Open() || d.Attempts != 0 {
		t.Fatalf("after removal: %+v, want the delivery open and untried", d)
	}

	e.n.SetSubscriptions(subs)
	waitEvaluating(t, true)
	e.n.SetSubscriptions(fixed)
	e.waitState("app", ev.ID, store.Delivered)
	if h := rc.next(t); !strings.Contains(string(h.Body), `"fixed"`) {
		t.Errorf("body %s, want the new payload's", h.Body)
	}
}
