package subscription

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/glob"
	"github.com/pollrelay/pollrelay/internal/check"
	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/signature"
)

// Check normalises s and reports every problem to p, each at its path
// under path: "subscriptions[2]" gives `subscriptions[2].url: …` for a
// file, "" gives `url: …` for an API body. Normalising twice changes
// nothing, so a Spec that passed can be checked again. Names are checked
// in form only; a list of subscriptions checks they are unique.
func (s *Spec) Check(path string, p *check.Problems) {
	s.check(path, p)
}

// check is Check, returning the compiled payload program when there is
// one and it compiles.
func (s *Spec) check(path string, p *check.Problems) *jqexpr.Expr {
	at := func(key string) string { return check.JoinKey(path, key) }
	s.normalise(at("retry"), p)
	check.Name(p, at("name"), s.Name, nil)
	if !s.Template || s.URL != "" {
		check.URL(p, at("url"), s.URL)
	}
	switch s.Method {
	case "POST", "PUT":
	default:
		p.Add(at("method"), "must be POST or PUT")
	}
	for j, g := range s.Events {
		ep := fmt.Sprintf("%s[%d]", at("events"), j)
		if strings.TrimSpace(g) == "" {
			p.Add(ep, "must not be empty")
		} else if !glob.Valid(g) {
			p.Add(ep, "bad glob %q", g)
		}
	}
	check.Headers(p, at("headers"), s.Headers)
	s.checkSecrets(path, p)
	if s.Timeout <= 0 {
		p.Add(at("timeout"), "must be more than 0")
	}
	check.Timeout(p, at("timeout"), s.Timeout)
	s.checkRetry(at("retry"), p)
	switch s.Ordering {
	case "resource", "none":
	default:
		p.Add(at("ordering"), "must be resource or none")
	}
	if s.MaxInFlight < 1 || s.MaxInFlight > MaxInFlightLimit {
		p.Add(at("max_in_flight"), "must be from 1 to %d", MaxInFlightLimit)
	}
	if s.DisableAfter < 0 {
		p.Add(at("disable_after"), "must not be negative")
	}
	if !defaultPayload(s.Payload) {
		e, err := jqexpr.Compile(s.Payload)
		if err != nil {
			// The jqexpr error already quotes the expression.
			p.Add(at("payload"), "%v", err)
		}
		return e
	}
	return nil
}

// defaultPayload reports whether payload asks for pollrelay's own
// envelope: empty, or '.'.
func defaultPayload(payload string) bool {
	payload = strings.TrimSpace(payload)
	return payload == "" || payload == "."
}

// normalise fills the defaults that depend on other fields. The every/for
// shorthand becomes the schedule it stands for, so what the API shows is
// a retry policy it takes back.
func (s *Spec) normalise(retryPath string, p *check.Problems) {
	s.Method = strings.ToUpper(strings.TrimSpace(s.Method))
	r := &s.Retry
	switch {
	case r.Every > 0 || r.For > 0:
		if r.Schedule != nil {
			p.Add(retryPath, "set either schedule or every/for, not both")
		} else if r.Every <= 0 || r.For < r.Every {
			p.Add(retryPath, "every must be more than 0 and for at least every")
		} else if n := int(r.For / r.Every); n > maxRetrySchedule {
			p.Add(retryPath, "every/for make %d retries; at most %d", n, maxRetrySchedule)
		} else {
			r.Schedule = slices.Repeat([]time.Duration{r.Every}, n)
			r.Every, r.For = 0, 0
		}
	case r.Schedule == nil:
		// Absent: the default. An explicit `schedule: []` means no retries.
		r.Schedule = slices.Clone(DefaultRetrySchedule)
	}
	if r.Jitter == nil {
		j := DefaultRetryJitter
		r.Jitter = &j
	}
}

func (s *Spec) checkRetry(path string, p *check.Problems) {
	r := s.Retry
	if len(r.Schedule) > maxRetrySchedule {
		p.Add(path+".schedule", "at most %d entries", maxRetrySchedule)
	}
	if j := r.Jitter; j != nil && (*j < 0 || *j > 1 || *j != *j) {
		p.Add(path+".jitter", "must be from 0 to 1 (0 = the exact schedule, 0.2 = ±20%%)")
	}
	for j, d := range r.Schedule {
		if d <= 0 {
			p.Add(fmt.Sprintf("%s.schedule[%d]", path, j), "must be more than 0")
		}
	}
}

// checkSecrets checks `signature:` and each secret against it. A scheme
// with a problem of its own is not asked about its secrets' fit. Messages
// never quote a secret.
func (s *Spec) checkSecrets(path string, p *check.Problems) {
	sigPath := check.JoinKey(path, "signature")
	sc := parseScheme(sigPath, s.Signature, p)
	if !p.HasUnder(sigPath) {
		if err := sc.Check(); err != nil {
			p.Add(sigPath, "%v", err)
		}
	}
	sp := check.JoinKey(path, "secret")
	secrets := secretsOf(sp, s.Secret, p)
	if len(secrets) == 0 {
		p.Add(sp, "required")
		return
	}
	_, single := s.Secret.(string)
	for _, e := range signature.CheckSecrets(sc, secrets) {
		at := sp
		if !single {
			at = fmt.Sprintf("%s[%d]", sp, e.Index)
		}
		msg := e.Err.Error()
		if errors.Is(e.Err, signature.ErrSecretForm) {
			msg += "; `pollrelay secret` prints a fresh one"
		}
		p.Add(at, "%s", msg)
	}
}

// secretsOf reads `secret:`, a string or a list of strings. Non-strings in
// a list keep their slot (as "") so later messages name the right index.
func secretsOf(path string, v any, p *check.Problems) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []string:
		return x
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				p.Bad(fmt.Sprintf("%s[%d]", path, i), "must be a string")
			}
			out[i] = s
		}
		return out
	default:
		p.Bad(path, "must be a string or a list of strings")
		return nil
	}
}

// parseScheme reads `signature:`: absent or "standard", or a mapping with
// scheme, header and encoding. p may be nil to read a Spec already
// checked.
func parseScheme(path string, v any, p *check.Problems) signature.Scheme {
	if p == nil {
		p = &check.Problems{}
	}
	const known = "(want standard, hmac-sha256 or token)"
	switch x := v.(type) {
	case nil:
		return signature.Scheme{Name: signature.SchemeStandard}
	case string:
		switch x {
		case signature.SchemeStandard:
		case signature.SchemeHMACSHA256, signature.SchemeToken:
			p.Add(path, "scheme %s needs a header: use {scheme: %s, header: X-Signature}", x, x)
		default:
			p.Add(path, "unknown scheme %q %s", x, known)
		}
		return signature.Scheme{Name: x}
	case map[string]any:
		sc := schemeFields(path, x, p)
		switch sc.Name {
		case "":
			p.Add(path+".scheme", "required %s", known)
		case signature.SchemeStandard:
			if sc.Header != "" {
				p.Add(path+".header", "only valid with scheme hmac-sha256 or token")
			}
			if sc.Encoding != "" {
				p.Add(path+".encoding", "only valid with scheme hmac-sha256")
			}
		case signature.SchemeHMACSHA256:
			if sc.Header == "" {
				p.Add(path+".header", "required with scheme hmac-sha256")
			}
			switch sc.Encoding {
			case "":
				sc.Encoding = signature.EncodingHex
			case signature.EncodingHex, signature.EncodingBase64:
			default:
				p.Add(path+".encoding", "must be hex or base64")
			}
		case signature.SchemeToken:
			if sc.Header == "" {
				p.Add(path+".header", "required with scheme token")
			}
			if sc.Encoding != "" {
				p.Add(path+".encoding", "only valid with scheme hmac-sha256")
			}
		default:
			p.Add(path+".scheme", "unknown scheme %q %s", sc.Name, known)
		}
		return sc
	default:
		p.Bad(path, "must be standard or a mapping like {scheme: hmac-sha256, header: X-Signature}")
		return signature.Scheme{}
	}
}

// schemeFields reads the keys of a `signature:` mapping.
func schemeFields(path string, m map[string]any, p *check.Problems) signature.Scheme {
	var sc signature.Scheme
	for _, k := range check.SortedKeys(m) {
		kp := check.JoinKey(path, k)
		var dst *string
		switch k {
		case "scheme":
			dst = &sc.Name
		case "header":
			dst = &sc.Header
		case "encoding":
			dst = &sc.Encoding
		default:
			p.Bad(kp, "unknown key")
			continue
		}
		s, ok := m[k].(string)
		if !ok {
			p.Bad(kp, "must be a string")
			continue
		}
		*dst = s
	}
	return sc
}

// RequireHTTPS refuses a subscription URL that is not https://, for
// delivery.require_https: the config applies it to its subscriptions and
// the API to those it creates.
func RequireHTTPS(raw string) error {
	if u, err := url.Parse(raw); err == nil && !strings.EqualFold(u.Scheme, "https") {
		return errors.New("must be https:// (delivery.require_https is on)")
	}
	return nil
}
