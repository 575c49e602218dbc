package schedule

import (
	"testing"
	"time"
)

func fires(t *testing.T, c *Cron, from time.Time, n int) []string {
	t.Helper()
	var out []string
	at := from
	for range n {
		at = c.Next(at)
		out = append(out, at.Format("01-02 15:04 MST"))
	}
	return out
}

func mustParse(t *testing.T, expr, zone string) *Cron {
	t.Helper()
	c, err := Parse(expr, zone)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %q, want %q", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: %q, want %q", what, got, want)
		}
	}
}

// The clocks go forward in Berlin at 02:00 on 29 March 2026 and back at
// 03:00 on 25 October 2026.
func TestDaylightSavingTime(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	spring := time.Date(2026, 3, 28, 12, 0, 0, 0, berlin)
	autumn := time.Date(2026, 10, 24, 12, 0, 0, 0, berlin)

	daily := mustParse(t, "30 2 * * *", "Europe/Berlin")
	equal(t, "a daily poll at a skipped time", fires(t, daily, spring, 3),
		[]string{"03-29 03:00 CEST", "03-30 02:30 CEST", "03-31 02:30 CEST"})
	equal(t, "a daily poll at a repeated time", fires(t, daily, autumn, 3),
		[]string{"10-25 02:30 CEST", "10-25 02:30 CET", "10-26 02:30 CET"})

	half := mustParse(t, "*/30 * * * *", "Europe/Berlin")
	equal(t, "every 30 minutes over the jump forward", fires(t, half, time.Date(2026, 3, 29, 1, 0, 0, 0, berlin), 3),
		[]string{"03-29 01:30 CET", "03-29 03:00 CEST", "03-29 03:30 CEST"})
	twoCEST := time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC) // 02:00 CEST, the first of the two
	equal(t, "every 30 minutes over the hour that repeats", fires(t, half, twoCEST, 4),
		[]string{"10-25 02:30 CEST", "10-25 02:00 CET", "10-25 02:30 CET", "10-25 03:00 CET"})

	window := mustParse(t, "0 9-17 * * MON-FRI", "America/New_York")
	fri := time.Date(2026, 3, 6, 17, 30, 0, 0, time.UTC) // 12:30 in New York
	equal(t, "business hours across a weekend and the US jump (8 March)", fires(t, window, fri, 7),
		[]string{"03-06 13:00 EST", "03-06 14:00 EST", "03-06 15:00 EST", "03-06 16:00 EST", "03-06 17:00 EST", "03-09 09:00 EDT", "03-09 10:00 EDT"})
}

func TestParseErrors(t *testing.T) {
	for expr, zone := range map[string]string{
		"* * *":                 "",
		"61 * * * *":            "",
		"0 9 * * *":             "Mars/Olympus",
		"CRON_TZ=UTC 0 9 * * *": "",
		"0 9 * * * *":           "",
	} {
		if _, err := Parse(expr, zone); err == nil {
			t.Errorf("%q in %q: no error", expr, zone)
		}
	}
	c := mustParse(t, "@every 10s", "")
	if got := c.Spread(time.Now()); got != 10*time.Second {
		t.Errorf("spread of @every 10s = %v", got)
	}
	if got := mustParse(t, "@hourly", "").Spread(time.Now()); got != time.Minute {
		t.Errorf("spread of @hourly = %v", got)
	}
}

// Past the end of a zone's table Go derives offsets from its rule, and
// zone bounds stop advancing at some year ends (2028 with the embedded
// data, 2040 with Debian's): Next must still answer.
func TestNextPastTheZoneTable(t *testing.T) {
	for _, expr := range []string{"2 * * * *", "0 9 * * *", "*/5 8-18 * * MON-FRI", "@yearly", "@monthly"} {
		c := mustParse(t, expr, "Europe/Berlin")
		for _, from := range []time.Time{
			time.Date(2028, 12, 30, 8, 0, 30, 0, time.UTC),
			time.Date(2040, 12, 30, 23, 30, 0, 0, time.UTC),
			time.Date(2044, 12, 30, 23, 30, 0, 0, time.UTC),
		} {
			done := make(chan time.Time, 1)
			go func() { done <- c.Next(from) }()
			select {
			case next := <-done:
				if !next.After(from) {
					t.Errorf("%s after %s: %s", expr, from, next)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s after %s: no answer in 5s", expr, from)
			}
		}
		if g := c.MinGap(time.Date(2040, 6, 1, 0, 0, 0, 0, time.UTC)); g <= 0 {
			t.Errorf("%s: MinGap %v", expr, g)
		}
	}
}
