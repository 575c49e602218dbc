// Package schedule is a source's `schedule:`: a cron expression in a time
// zone, for APIs that change (or may be called) only at some hours. The
// expression is parsed by robfig/cron; this package adds what polling
// needs of it around daylight saving time.
package schedule

import (
	"fmt"
	"strings"
	"time"
	// Time zones by name must resolve in a minimal image without
	// /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// Cron is a parsed schedule in its time zone.
type Cron struct {
	expr string
	loc  *time.Location
	s    cron.Schedule
}

// Parse reads a standard five-field cron expression ("*/5 8-18 * * MON-FRI")
// or a descriptor (@hourly, @daily, @every 10m) in the IANA time zone
// zone; "" is UTC.
func Parse(expr, zone string) (*Cron, error) {
	expr = strings.TrimSpace(expr)
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, fmt.Errorf("put the time zone in timezone:, not in the expression")
	}
	s, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("cron %q: %w", expr, err)
	}
	if zone == "" {
		zone = "UTC"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: not an IANA time zone such as Europe/Berlin", zone)
	}
	return &Cron{expr: expr, loc: loc, s: s}, nil
}

// String is the schedule as /v1/sources shows it.
func (c *Cron) String() string { return c.expr + " " + c.loc.String() }

// Next is the first time strictly after t the schedule fires. When the
// clocks go forward, a time the jump skips (02:30 on the night 02:00
// becomes 03:00) fires at the jump instead of not at all, so a daily poll
// is never lost. When they go back, a time that happens twice fires
// twice, an hour apart: for polling that is one request more, never a
// window missed.
func (c *Cron) Next(t time.Time) time.Time {
	t = t.In(c.loc)
	next := c.s.Next(t)
	if next.IsZero() {
		return next
	}
	_, before := t.Zone()
	_, after := next.Zone()
	if after <= before {
		return next // no forward jump in between
	}
	if jumped, ok := c.skippedFire(jumpBetween(t, next)); ok && jumped.After(t) {
		return jumped
	}
	return next
}

// jumpBetween is the instant in (a, b] where the zone offset changes from
// a's, found by bisection (zone tables give no transitions past their
// end, so they are not walked).
func jumpBetween(a, b time.Time) time.Time {
	_, off := a.Zone()
	for b.Sub(a) > time.Second {
		mid := a.Add(b.Sub(a) / 2)
		if _, o := mid.Zone(); o == off {
			a = mid
		} else {
			b = mid
		}
	}
	return b.Truncate(time.Second)
}

// skippedFire reports whether the schedule would have fired at a wall
// time the zone change at instant skips, and returns that instant.
func (c *Cron) skippedFire(at time.Time) (time.Time, bool) {
	_, before := at.Add(-time.Nanosecond).Zone()
	_, after := at.Zone()
	if after <= before {
		return time.Time{}, false // clocks went back: nothing skipped
	}
	// The skipped wall times are [at in the old offset, at in the new);
	// on a clock without zones the schedule fires there or it does not.
	float := func(t time.Time, off int) time.Time { return t.Add(time.Duration(off) * time.Second).UTC() }
	from, to := float(at, before), float(at, after)
	if fire := c.s.Next(from.Add(-time.Nanosecond)); fire.Before(to) {
		return at, true
	}
	return time.Time{}, false
}

// Spread bounds the offset that spreads sources of one schedule: up to a
// minute, which keeps each poll inside the minute the expression names,
// or less when the schedule fires more often than that.
func (c *Cron) Spread(now time.Time) time.Duration {
	a := c.Next(now)
	b := c.Next(a)
	if a.IsZero() || b.IsZero() {
		return time.Minute
	}
	return min(time.Minute, b.Sub(a))
}

// Gap is how long after its next fire the schedule fires again: the base
// of a failing source's backoff.
func (c *Cron) Gap(now time.Time) time.Duration {
	a := c.Next(now)
	b := c.Next(a)
	if a.IsZero() || b.IsZero() {
		return time.Hour
	}
	return b.Sub(a)
}

// MinGap is the shortest time between two polls over the next hundred
// fires after now: what a source's timeout must stay under.
func (c *Cron) MinGap(now time.Time) time.Duration {
	best := time.Duration(0)
	a := c.Next(now)
	for range 100 {
		b := c.Next(a)
		if a.IsZero() || b.IsZero() {
			break
		}
		if g := b.Sub(a); best == 0 || g < best {
			best = g
		}
		a = b
	}
	return best
}
