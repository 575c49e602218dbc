package config

import (
	"net/url"
	"strings"
	"time"
)

// Bounds on values that are valid in form but would break pollrelay or
// its receivers at their extremes. README.md ("Limits") lists them.
const (
	// MaxNameLen bounds source and subscription names: they are metric
	// labels, parts of store keys and API paths.
	MaxNameLen = 64
	// MaxInFlightLimit bounds a subscription's concurrent deliveries: each
	// is a connection to the receiver.
	MaxInFlightLimit = 1000
	// MinTimeout and MaxTimeout bound a source's request timeout and a
	// subscription's delivery timeout: below 100ms nothing across a
	// network answers; above 5m a hung peer holds a slot for too long.
	MinTimeout = 100 * time.Millisecond
	MaxTimeout = 5 * time.Minute
	// MinAPITokenLen is the shortest api_token accepted: a shorter one
	// can be guessed.
	MinAPITokenLen = 16
)

// checkAPIToken refuses a token too short to be secret, or one no client
// can send in a header. An empty token turns /v1 off. The token is never
// quoted.
func checkAPIToken(token string, p *problems) {
	switch {
	case token == "":
	case len(token) < MinAPITokenLen:
		p.add("api_token", "must be at least %d bytes; make one with: head -c 24 /dev/urandom | base64", MinAPITokenLen)
	case strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		p.add("api_token", "must not contain spaces or control characters")
	}
}

// checkTimeout checks a request or delivery timeout that is already
// known to be more than 0.
func checkTimeout(path string, d time.Duration, p *problems) {
	if d > 0 && (d < MinTimeout || d > MaxTimeout) {
		p.add(path, "must be from %s to %s", MinTimeout, fmtDuration(MaxTimeout))
	}
}

// checkPort refuses a URL whose port no connection can use. url.Parse
// takes any run of digits (":0", ":99999"); an empty port means the
// scheme's default.
func checkPort(path, raw string, p *problems) {
	u, err := url.Parse(raw)
	if err != nil || u.Port() == "" {
		return
	}
	if !validPort(u.Port()) {
		p.add(path, "port must be a number from 1 to 65535")
	}
}

// validPort reports whether s is a decimal port from 1 to 65535, written
// without sign or spaces.
func validPort(s string) bool {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return false
	}
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 65535
}

// validHeaderValue reports whether net/http would send v as a header
// value: no control characters but horizontal tab (RFC 9110 §5.5).
func validHeaderValue(v string) bool {
	return !strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f })
}
