// Package retryafter reads the HTTP Retry-After header, which both sides of
// pollrelay honour: upstreams that ask to be polled later, and receivers
// that ask for a later retry.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Parse reads delta-seconds or an HTTP-date (RFC 9110 §10.2.3) relative to
// now. A date in the past is zero; anything unreadable reports false.
func Parse(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
