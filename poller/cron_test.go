package poller

import (
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// A source with schedule: polls only at the times its cron expression
// names, each poll a fixed offset under a minute into its slot, and
// /v1/sources shows the schedule and the next poll. The bubble's clock
// starts at midnight UTC on Saturday 1 January 2000.
func TestSchedulePollsOnlyAtItsTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &recorder{answer: okJSON(`[{"id":1,"status":"ok"}]`)}
		h := newHarness(t, handlerTransport{rc})
		h.start(sources(t, "  - {name: s, url: 'http://upstream.test/s', items: '.[]', schedule: {cron: '*/20 9-10 * * SAT', timezone: Europe/Berlin}}\n"))
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		st := h.status("s")
		ts := rc.times()
		h.close()

		berlin, _ := time.LoadLocation("Europe/Berlin")
		// Saturday from 09:00 to 10:40 in Berlin: six polls.
		if len(ts) != 6 {
			t.Fatalf("%d polls in a day, want 6: %v", len(ts), ts)
		}
		off := ts[0].Sub(ts[0].Truncate(time.Minute))
		for _, at := range ts {
			local := at.In(berlin)
			if local.Weekday() != time.Saturday || local.Hour() < 9 || local.Hour() > 10 || local.Minute()%20 != 0 {
				t.Errorf("polled at %s, outside the schedule", local)
			}
			if at.Sub(at.Truncate(time.Minute)) != off {
				t.Errorf("polled at %s: offset %v, want the source's %v every time", local, at.Sub(at.Truncate(time.Minute)), off)
			}
		}
		if want := time.Date(2000, 1, 8, 9, 0, 0, 0, berlin).Add(off); !st.NextPollAt.Equal(want) {
			t.Errorf("next poll %s, want %s", st.NextPollAt.In(berlin), want)
		}
		if st.Interval != "*/20 9-10 * * SAT Europe/Berlin" {
			t.Errorf("interval shown as %q", st.Interval)
		}
	})
}

// A failing scheduled source backs off by its schedule's own gaps and
// never polls outside its times; once the upstream answers again it is
// back on every slot.
func TestScheduleBacksOffWithinItsTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &recorder{answer: func(n int, w http.ResponseWriter, _ *http.Request) {
			if n < 4 {
				http.Error(w, "no", http.StatusNotFound)
				return
			}
			okJSON(`[{"id":1,"status":"ok"}]`)(n, w, nil)
		}}
		h := newHarness(t, handlerTransport{rc})
		h.start(sources(t, "  - {name: s, url: 'http://upstream.test/s', items: '.[]', max_backoff: 1h, schedule: {cron: '*/5 1-2 * * *'}}\n"))
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		ts := rc.times()
		h.close()
		var mins []int
		for _, at := range ts {
			if at.Hour() < 1 || at.Hour() > 2 || at.Minute()%5 != 0 {
				t.Errorf("polled at %s, outside the schedule", at)
			}
			mins = append(mins, at.Hour()*60+at.Minute())
		}
		g := make([]int, 0, len(mins))
		for i := 1; i < len(mins); i++ {
			g = append(g, mins[i]-mins[i-1])
		}
		// Failure 1 waits for the next slot, 2 doubles the 5-minute gap, 3
		// and 4 double again; then every slot.
		want := []int{5, 10, 20, 40, 5, 5}
		if len(g) < len(want) || fmt.Sprint(g[:len(want)]) != fmt.Sprint(want) {
			t.Errorf("gaps between polls (minutes) = %v, want %v", g, want)
		}
	})
}
