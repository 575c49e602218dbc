package check

import (
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Bounds on values that are valid in form but would break pollrelay or
// its receivers at their extremes. README.md ("Limits") lists them.
const (
	// MaxNameLen bounds source and subscription names: they are metric
	// labels, parts of store keys and API paths.
	MaxNameLen = 64
	// MinTimeout and MaxTimeout bound a source's request timeout and a
	// subscription's delivery timeout: below 100ms nothing across a
	// network answers; above 5m a hung peer holds a slot for too long.
	MinTimeout = 100 * time.Millisecond
	MaxTimeout = 5 * time.Minute
)

// nameRE is what source and subscription names may contain: they appear in
// metric labels, event types and API paths.
var nameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// Name checks a source or subscription name. With seen, a name already in
// it is a duplicate, and a good name is added to it.
func Name(p *Problems, path, name string, seen map[string]bool) {
	switch {
	case name == "":
		p.Add(path, "required")
	case !nameRE.MatchString(name):
		p.Add(path, "must contain only a-z, 0-9, _ and -")
	case len(name) > MaxNameLen:
		p.Add(path, "must be at most %d characters", MaxNameLen)
	case seen == nil:
	case seen[name]:
		p.Add(path, "duplicate %q", name)
	default:
		seen[name] = true
	}
}

// NameOK reports whether Name takes name, duplicates aside.
func NameOK(name string) bool {
	return name != "" && nameRE.MatchString(name) && len(name) <= MaxNameLen
}

// URL requires an absolute http(s) URL. The URL is never quoted: it may
// carry credentials.
func URL(p *Problems, path, raw string) {
	if strings.TrimSpace(raw) == "" {
		p.Add(path, "required")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		p.Add(path, "must be an absolute http or https URL")
		return
	}
	Port(p, path, raw)
}

// Port refuses a URL whose port no connection can use. url.Parse takes
// any run of digits (":0", ":99999"); an empty port means the scheme's
// default.
func Port(p *Problems, path, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Port() == "" {
		return
	}
	if !ValidPort(u.Port()) {
		p.Add(path, "port must be a number from 1 to 65535")
	}
}

// ValidPort reports whether s is a decimal port from 1 to 65535, written
// without sign or spaces.
func ValidPort(s string) bool {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return false
	}
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 65535
}

// Headers rejects header names and values net/http would refuse to send,
// so a typo fails at load rather than on every request. Values are never
// quoted: they often hold tokens.
func Headers(p *Problems, path string, h map[string]string) {
	keys := make(map[string]any, len(h))
	for k := range h {
		keys[k] = nil
	}
	for _, k := range SortedKeys(keys) {
		kp := JoinKey(path, k)
		if !HeaderName(k) {
			p.Add(kp, "invalid header name")
		}
		if !HeaderValue(h[k]) {
			p.Add(kp, "must not contain control characters such as CR, LF or NUL")
		}
	}
}

// HeaderName reports whether s is an RFC 9110 token.
func HeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// HeaderValue reports whether net/http would send v as a header value: no
// control characters but horizontal tab (RFC 9110 §5.5).
func HeaderValue(v string) bool {
	return !strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f })
}

// Timeout checks a request or delivery timeout that is already known to
// be more than 0.
func Timeout(p *Problems, path string, d time.Duration) {
	if d > 0 && (d < MinTimeout || d > MaxTimeout) {
		p.Add(path, "must be from %s to %s", MinTimeout, FmtDuration(MaxTimeout))
	}
}

// FmtDuration drops zero trailing units: 1m rather than 1m0s.
func FmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
