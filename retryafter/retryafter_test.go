package retryafter

import (
	"math"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	now := time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)
	const maxDur = time.Duration(math.MaxInt64)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"Thu, 15 Jan 2026 10:31:30 GMT", 90 * time.Second, true},
		{"Thursday, 15-Jan-26 10:31:30 GMT", 90 * time.Second, true}, // RFC 850
		{"Thu Jan 15 10:31:30 2026", 90 * time.Second, true},         // asctime
		{"Thu, 15 Jan 2026 10:00:00 GMT", 0, true},                   // past
		{"Mon, 01 Jan 1990 00:00:00 GMT", 0, true},                   // long past
		{"99999999", 99999999 * time.Second, true},                   // three years: asked, callers cap it
		{"9223372036", 9223372036 * time.Second, true},               // the last whole second a Duration holds
		{"9223372037", maxDur, true},                                 // would wrap to negative
		{"18446744073709551616", maxDur, true},                       // beyond int64
		{"99999999999999999999999999999999", maxDur, true},
		{"Thu, 01 Jan 2099 00:00:00 GMT", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).Sub(now), true},
		{"Fri, 31 Dec 9999 23:59:59 GMT", maxDur, true},
		{"-5", 0, false},
		{"-99999999999", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"1e9", 0, false},
		{"12 34", 0, false},
		{"soon", 0, false},
		{"0x10", 0, false},
		{"", 0, false},
	}
	for _, c := range cases {
		got, ok := Parse(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("Parse(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
		if got < 0 {
			t.Errorf("Parse(%q) = %v: negative", c.in, got)
		}
	}
}

func TestCap(t *testing.T) {
	d, _ := Parse("99999999", time.Now())
	if got, capped := Cap(d, 24*time.Hour); got != 24*time.Hour || !capped {
		t.Errorf("Cap(%v, 24h) = %v, %v", d, got, capped)
	}
	if got, capped := Cap(time.Minute, 24*time.Hour); got != time.Minute || capped {
		t.Errorf("Cap(1m, 24h) = %v, %v", got, capped)
	}
}
