package notifier

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// within reports whether d is within ±20% of want, the retry jitter.
func within(d, want time.Duration) bool {
	return d >= want*8/10 && d <= want*12/10
}

// The retry schedule is followed attempt by attempt in fake time, each
// attempt is logged, and the delivery is dead after the last.
func TestRetryScheduleFollowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleReceiver(t)
		b.rc.setAnswer(func(_ *hit, w http.ResponseWriter, _ *http.Request) int {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, strings.Repeat("x", 4000))
			return -1
		})
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			retry: {schedule: [10s, 1m, 5m]}`)
		e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
		ev := e.emit("task.ready", "a")

		var at []time.Time
		for range 4 {
			h := b.rc.next(t)
			if h.ID != ev.ID {
				t.Fatalf("webhook-id %q, want %q on every attempt", h.ID, ev.ID)
			}
			at = append(at, h.At)
		}
		if !at[0].Equal(ev.CreatedAt) {
			t.Errorf("first attempt at %s, want at once (%s)", at[0], ev.CreatedAt)
		}
		for i, want := range []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute} {
			if gap := at[i+1].Sub(at[i]); !within(gap, want) {
				t.Errorf("retry %d came %s after the previous attempt, want %s ±20%%", i+1, gap, want)
			}
		}
		d := e.waitState("app", ev.ID, store.Dead)
		if d.Attempts != 4 || d.LastStatus != 500 {
			t.Errorf("dead delivery: %+v", d)
		}

		// Nothing more: wait twice the longest step of the schedule.
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if n := len(b.rc.all()); n != 4 {
			t.Fatalf("%d requests after dead-lettering, want 4", n)
		}

		as := e.attempts(ev.ID)
		if len(as) != 4 {
			t.Fatalf("%d attempts logged, want 4", len(as))
		}
		for i, a := range as {
			if a.N != i+1 || a.Status != 500 || a.Outcome != OutcomeHTTPError || a.Error != "status 500" ||
				len(a.Body) != maxResponseBody || !a.At.Equal(at[i]) || a.Subscription != "app" {
				t.Errorf("attempt %d: %+v", i+1, a)
			}
		}
		st, _ := e.n.Stats("app")
		if st.FailureCount != 4 || st.LastResponseStatus != 500 || st.DeadCount != 1 ||
			st.QueueLength+st.RetryQueueLength != 0 || !st.LastTriggeredAt.Equal(at[3]) || st.Disabled {
			t.Errorf("stats: %+v", st)
		}
		if g := e.gauge("app", "dead"); g != 1 {
			t.Errorf("dead gauge %v, want 1", g)
		}
		if g := e.gauge("app", "retrying") + e.gauge("app", "pending"); g != 0 {
			t.Errorf("pending+retrying gauges %v, want 0", g)
		}
		if c := e.outcomes("app", OutcomeHTTPError); c != 4 {
			t.Errorf("http_error count %v, want 4", c)
		}
	})
}

// Retry-After (seconds or an HTTP date) lengthens the wait, up to twice
// the scheduled delay; a shorter one leaves the schedule alone.
func TestRetryAfterHonoured(t *testing.T) {
	cases := []struct {
		name     string
		header   func(now time.Time) string
		min, max time.Duration
	}{
		{"seconds within the clamp", func(time.Time) string { return "15" }, 15 * time.Second, 15 * time.Second},
		{"seconds beyond twice the schedule", func(time.Time) string { return "3600" }, 20 * time.Second, 20 * time.Second},
		{"shorter than the schedule", func(time.Time) string { return "1" }, 8 * time.Second, 12 * time.Second},
		{"http date", func(now time.Time) string { return now.Add(17 * time.Second).UTC().Format(http.TimeFormat) }, 17 * time.Second, 17 * time.Second},
		{"unparseable", func(time.Time) string { return "soon" }, 8 * time.Second, 12 * time.Second},
		// Huge asks are at most twice the schedule, never wrapped into a
		// short or negative wait.
		{"three years in seconds", func(time.Time) string { return "99999999" }, 20 * time.Second, 20 * time.Second},
		{"seconds that overflow a Duration", func(time.Time) string { return "9300000000" }, 20 * time.Second, 20 * time.Second},
		{"seconds beyond int64", func(time.Time) string { return "99999999999999999999999" }, 20 * time.Second, 20 * time.Second},
		{"http date in 2099", func(time.Time) string { return "Thu, 01 Jan 2099 00:00:00 GMT" }, 20 * time.Second, 20 * time.Second},
		{"negative", func(time.Time) string { return "-30" }, 8 * time.Second, 12 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBubbleReceiver(t)
				b.rc.setAnswer(func(h *hit, w http.ResponseWriter, _ *http.Request) int {
					if h.N > 1 {
						return 0
					}
					w.Header().Set("Retry-After", c.header(time.Now()))
					return http.StatusTooManyRequests
				})
				subs := parseSubs(t, `name: app
					url: `+bubbleURL+`
					secret: `+testSecret+`
					retry: {schedule: [10s]}`)
				e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
				ev := e.emit("task.ready", "a")
				first, second := b.rc.next(t), b.rc.next(t)
				if gap := second.At.Sub(first.At); gap < c.min || gap > c.max {
					t.Errorf("retry after %s, want [%s, %s]", gap, c.min, c.max)
				}
				e.waitState("app", ev.ID, store.Delivered)
				if as := e.attempts(ev.ID); len(as) != 2 || as[0].Status != 429 || as[1].Outcome != OutcomeSuccess {
					t.Errorf("attempts: %+v", as)
				}
			})
		})
	}
}

// A 410 disables the subscription at once: deliveries keep queueing but
// nothing is sent until it is re-enabled, and then everything goes.
func TestGoneDisablesSubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleReceiver(t)
		gone := true
		b.rc.setAnswer(func(*hit, http.ResponseWriter, *http.Request) int {
			if gone {
				return http.StatusGone
			}
			return 0
		})
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			retry: {schedule: [1s, 1s, 1s]}`)
		e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
		first := e.emit("task.ready", "a")
		if h := b.rc.next(t); h.Status != http.StatusGone {
			t.Fatalf("status %d", h.Status)
		}
		e.waitState("app", first.ID, store.Retrying)
		synctest.Wait()
		st, _ := e.n.Stats("app")
		if !st.Disabled || st.DisabledReason != ReasonGone || st.FailureCount != 1 || st.LastResponseStatus != 410 {
			t.Fatalf("after a 410: %+v", st)
		}

		// Disabled: new events queue, retries fall due, nothing is sent.
		second := e.emit("task.ready", "b")
		third := e.emit("task.ready", "c")
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(b.rc.all()); n != 1 {
			t.Fatalf("%d requests while disabled, want just the 410", n)
		}
		st, _ = e.n.Stats("app")
		if st.QueueLength != 2 || st.RetryQueueLength != 1 {
			t.Errorf("queue while disabled: %+v", st)
		}
		if e.gauge("app", "pending") != 2 || e.gauge("app", "retrying") != 1 {
			t.Errorf("gauges while disabled: pending %v retrying %v", e.gauge("app", "pending"), e.gauge("app", "retrying"))
		}

		// Re-enabled: the queue drains at once and the failure run resets.
		gone = false
		if err := e.n.SetDisabled(t.Context(), "app", false); err != nil {
			t.Fatal(err)
		}
		for _, ev := range []string{first.ID, second.ID, third.ID} {
			e.waitState("app", ev, store.Delivered)
		}
		synctest.Wait()
		st, _ = e.n.Stats("app")
		if st.Disabled || st.FailureCount != 0 || st.QueueLength+st.RetryQueueLength != 0 || st.LastResponseStatus != 204 {
			t.Errorf("after re-enabling: %+v", st)
		}

		if err := e.n.SetDisabled(t.Context(), "nope", true); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetDisabled(unknown) = %v, want ErrNotFound", err)
		}
	})
}

// disable_after disables a subscription once it has seen nothing but
// failures for that long, and the state survives a restart.
func TestDisableAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		b := newBubbleReceiver(t)
		b.rc.setAnswer(func(*hit, http.ResponseWriter, *http.Request) int { return http.StatusServiceUnavailable })
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			disable_after: 1m
			retry: {schedule: [20s, 20s, 20s, 20s, 20s, 20s]}`)
		e := start(t, dir, subs, Options{Transport: b.tr})
		ev := e.emit("task.ready", "a")
		first := b.rc.next(t)
		var last hit
		for {
			last = b.rc.next(t)
			if last.At.Sub(first.At) >= time.Minute {
				break
			}
		}
		synctest.Wait()
		st, _ := e.n.Stats("app")
		if !st.Disabled || !strings.Contains(st.DisabledReason, "disable_after") || !st.DisabledAt.Equal(last.At) ||
			!st.FirstFailureAt.Equal(first.At) {
			t.Fatalf("after %s of failures: %+v", last.At.Sub(first.At), st)
		}
		n := len(b.rc.all())
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if len(b.rc.all()) != n {
			t.Fatal("a disabled subscription was sent to")
		}
		if d := e.delivery("app", ev.ID); d.State != store.Retrying {
			t.Errorf("delivery of a disabled subscription: %+v, want it kept retrying", d)
		}
		e.stop()

		e = start(t, dir, subs, Options{Transport: b.tr})
		synctest.Wait()
		if st, _ := e.n.Stats("app"); !st.Disabled || st.FailureCount != n || st.RetryQueueLength != 1 {
			t.Errorf("after restart: %+v, want disabled with %d failures", st, n)
		}
	})
}

// retry.jitter: 0 keeps a vendor's documented delays to the millisecond
// (CSM: 2 s, 4 s, 8 s), where the default would move each by up to ±20%.
func TestRetryExactWithoutJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubbleReceiver(t)
		b.rc.setAnswer(func(_ *hit, w http.ResponseWriter, _ *http.Request) int {
			w.WriteHeader(http.StatusServiceUnavailable)
			return -1
		})
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			retry: {schedule: [2s, 4s, 8s], jitter: 0}`)
		e := start(t, t.TempDir(), subs, Options{Transport: b.tr})
		e.emit("task.ready", "a")
		var at []time.Time
		for range 4 {
			at = append(at, b.rc.next(t).At)
		}
		for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
			if gap := at[i+1].Sub(at[i]); gap != want {
				t.Errorf("retry %d came %s after the previous attempt, want exactly %s", i+1, gap, want)
			}
		}
	})
}
