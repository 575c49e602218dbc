// Package retryafter reads the HTTP Retry-After header, which both sides of
// pollrelay honour: upstreams that ask to be polled later, and receivers
// that ask for a later retry. What it returns is what was asked, saturated
// rather than wrapped; each caller caps it (Cap) by its own rule.
package retryafter

import (
	"math"
	"net/http"
	"strings"
	"time"
)

// maxSeconds is the largest delta-seconds a Duration holds.
const maxSeconds = math.MaxInt64 / int64(time.Second)

// Parse reads delta-seconds or an HTTP-date (RFC 9110 §10.2.3) relative to
// now. A date in the past is zero; a value beyond what a Duration holds
// (Retry-After: 99999999999, a date in the year 9999) is the largest
// Duration, never a wrapped one; anything unreadable reports false.
func Parse(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, ok := seconds(v); ok {
		if s > maxSeconds {
			return math.MaxInt64, true
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true // Sub saturates
	}
	return 0, false
}

// seconds reads delta-seconds (1*DIGIT: no sign, no spaces), saturating
// at math.MaxInt64.
func seconds(v string) (int64, bool) {
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (math.MaxInt64-int64(c-'0'))/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// Cap returns d bounded by limit, and whether the bound applied.
func Cap(d, limit time.Duration) (time.Duration, bool) {
	if d > limit {
		return limit, true
	}
	return d, false
}
