// Package redact cuts credentials out of text pollrelay shows: errors, log
// lines and API answers. An upstream that echoes a request into an error
// page echoes its credentials in whatever form they travelled, so a secret
// is cut in every form it can take on the way: as sent, base64 (a Basic
// header), percent-encoded (a URL), JSON-escaped and Go-quoted (how an
// error quotes a body).
package redact

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Mark replaces every secret.
const Mark = "[redacted]"

// minLen is the shortest secret cut: shorter values would cut ordinary
// words out of every message.
const minLen = 4

// Set is a source's secrets with every form of them. The zero value and
// nil hold none. Secrets are added before its first use; their forms are
// worked out then, so a set made for every poll costs little until an
// error needs it.
type Set struct {
	values []string // as added, base64 forms included
	once   sync.Once
	forms  []string // longest first, so a form's prefix never survives it
}

// Add adds secrets (a token, a password, an API key) in all their forms.
func (s *Set) Add(secrets ...string) {
	for _, v := range secrets {
		if len(v) < minLen {
			continue
		}
		s.addForms(v)
		s.addForms(base64.StdEncoding.EncodeToString([]byte(v)))
		s.addForms(base64.URLEncoding.EncodeToString([]byte(v)))
	}
}

// AddBasic adds HTTP Basic credentials: the password, and user:pass in
// the base64 forms an Authorization header carries.
func (s *Set) AddBasic(user, password string) {
	s.Add(password)
	if password == "" {
		return
	}
	pair := []byte(user + ":" + password)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		s.addForms(enc.EncodeToString(pair))
	}
}

// AddHeader adds a header value: all of it, its token after a scheme
// ("Bearer xyz", "Basic dXNlcjpwYXNz"), and for Basic what it decodes to.
func (s *Set) AddHeader(v string) {
	s.Add(v)
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return
	}
	tok = strings.TrimSpace(tok)
	s.Add(tok)
	if strings.EqualFold(scheme, "basic") {
		if raw, err := base64.StdEncoding.DecodeString(tok); err == nil && utf8.Valid(raw) {
			if user, pass, ok := strings.Cut(string(raw), ":"); ok {
				s.AddBasic(user, pass)
			}
		}
	}
}

// addForms adds v, to be cut as sent and in the encodings it may be
// shown in.
func (s *Set) addForms(v string) {
	if len(v) >= minLen {
		s.values = append(s.values, v)
	}
}

// build works out every form of every value.
func (s *Set) build() {
	seen := map[string]bool{}
	for _, v := range s.values {
		base := []string{v, url.QueryEscape(v), url.PathEscape(v), lowerHex(url.QueryEscape(v)), lowerHex(url.PathEscape(v))}
		for _, b := range base {
			j, _ := json.Marshal(b) // a string always encodes
			js := string(j[1 : len(j)-1])
			for _, f := range []string{b, js, strings.ReplaceAll(js, "/", `\/`), quoteInner(b), quoteInner(js)} {
				if !seen[f] {
					seen[f] = true
					s.forms = append(s.forms, f)
				}
			}
		}
	}
	slices.SortStableFunc(s.forms, func(a, b string) int { return len(b) - len(a) })
}

// all returns every form, longest first.
func (s *Set) all() []string {
	if s == nil {
		return nil
	}
	s.once.Do(s.build)
	return s.forms
}

// String returns msg with every secret replaced by Mark.
func (s *Set) String(msg string) string {
	for _, f := range s.all() {
		if strings.Contains(msg, f) {
			msg = strings.ReplaceAll(msg, f, Mark)
		}
	}
	return msg
}

// Truncated cuts what is left of a secret where text was shortened: before
// each occurrence of cut (the marker a shortened quote ends with), the
// longest start of a secret's form is replaced by Mark. String cannot see
// a secret the shortening left half shown.
func (s *Set) Truncated(msg, cut string) string {
	forms := s.all()
	if len(forms) == 0 || cut == "" {
		return msg
	}
	var b strings.Builder
	for {
		i := strings.Index(msg, cut)
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		head, best := msg[:i], 0
		for _, f := range forms {
			for k := min(len(f)-1, len(head)); k >= minLen && k > best; k-- {
				if strings.HasSuffix(head, f[:k]) {
					best = k
					break
				}
			}
		}
		if best > 0 {
			head = head[:len(head)-best] + Mark
		}
		b.WriteString(head)
		b.WriteString(cut)
		msg = msg[i+len(cut):]
	}
}

// Head is b with every secret cut, for a text that keeps only its first n
// bytes: b is read n plus Longest bytes far, so a secret straddling the
// cut is cut whole before the caller shortens the text.
func (s *Set) Head(b []byte, n int) string {
	if m := n + s.Longest(); len(b) > m {
		b = b[:m]
	}
	return s.String(string(b))
}

// Longest is the length of the longest form: a caller that cuts text short
// redacts this much past the cut first, so no secret is left half shown.
func (s *Set) Longest() int {
	if forms := s.all(); len(forms) > 0 {
		return len(forms[0])
	}
	return 0
}

func quoteInner(v string) string {
	q := strconv.Quote(v)
	return q[1 : len(q)-1]
}

// lowerHex lowercases the hex digits of percent-escapes, which some
// servers echo that way.
func lowerHex(v string) string {
	b := []byte(v)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lower(b[i+1]), lower(b[i+2])
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// URLError removes the URL net/http puts into its errors (*url.Error): it
// may carry credentials, and the caller names a redacted one if any.
func URLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// URL drops user info and query values, where upstreams often carry
// credentials, from a URL meant for a log line or an error.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	q := u.Query()
	for k := range q {
		q.Set(k, "redacted")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Userinfo hides a password in a URL: it is a credential, not part of
// where requests go.
func Userinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	return u.String()
}

// Headers hides the values of headers that usually carry credentials.
func Headers(h map[string]string) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		if Credential(k) {
			v = "redacted"
		}
		out[k] = v
	}
	return out
}

// Credential reports whether a header of this name usually carries one.
func Credential(header string) bool {
	lk := strings.ToLower(header)
	return lk == "authorization" || lk == "cookie" || strings.Contains(lk, "token") ||
		strings.Contains(lk, "secret") || strings.Contains(lk, "key") || strings.Contains(lk, "signature")
}

// FromRequest is the secrets a configured request carries: the values of
// its credential headers, its URL's password and query values.
func FromRequest(rawURL string, headers map[string]string) *Set {
	s := &Set{}
	for k, v := range headers {
		if Credential(k) {
			s.AddHeader(v)
		}
	}
	s.AddURL(rawURL)
	return s
}

// AddURL adds what a URL carries as credentials: its query values, and its
// user info, which net/http sends as a Basic header.
func (s *Set) AddURL(raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		return
	}
	for _, vs := range u.Query() {
		s.Add(vs...)
	}
	if p, ok := u.User.Password(); ok {
		s.AddBasic(u.User.Username(), p)
	}
}
