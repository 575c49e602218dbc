package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// goInternals matches what an answer must never show a client: Go type
// names and Go's time layout.
var goInternals = regexp.MustCompile(`interface \{\}|map\[|\[\]|2006-01-02|15:04:05|Z07:00|%!`)

func send(t *testing.T, h http.Handler, method, path, auth, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewBufferString(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &e)
	return w.Code, e.Error
}

// TestBearerScheme: the scheme is case-insensitive (RFC 7235) and the
// white space around the token is not part of it.
func TestBearerScheme(t *testing.T) {
	h := newFuzzServer(t)
	for _, auth := range []string{
		"Bearer " + fuzzToken, "bearer " + fuzzToken, "BEARER " + fuzzToken, "bEaReR " + fuzzToken,
		"Bearer   " + fuzzToken, "  bearer " + fuzzToken + "  ", "Bearer\t" + fuzzToken, "bearer \t " + fuzzToken + "\t",
	} {
		if code, msg := send(t, h, "GET", "/v1/subscriptions", auth, ""); code != 200 {
			t.Errorf("%q: %d %s", auth, code, msg)
		}
	}
	for _, auth := range []string{
		"", "Bearer", "Bearer ", "Bearer" + fuzzToken, "Basic " + fuzzToken, "Bearer x" + fuzzToken,
		"Bearer " + fuzzToken + " x", "Token " + fuzzToken, "Bearers " + fuzzToken,
	} {
		if code, _ := send(t, h, "GET", "/v1/subscriptions", auth, ""); code != 401 {
			t.Errorf("%q: %d, want 401", auth, code)
		}
	}
}

// TestAPIErrorsInWords: every 422 says what is wanted in JSON's words,
// never a Go type or time layout, and names the field.
func TestAPIErrorsInWords(t *testing.T) {
	h := newFuzzServer(t)
	auth := "Bearer " + fuzzToken
	hook := `"url": "https://example.com/hook"`
	long := strings.Repeat("a", 65)
	cases := []struct{ method, path, body, want string }{
		{"POST", "/v1/subscriptions", `[]`, "body: must be an object"},
		{"POST", "/v1/subscriptions", `"x"`, "body: must be an object"},
		{"POST", "/v1/subscriptions", `7`, "body: must be an object"},
		{"PATCH", "/v1/subscriptions/x", `[1]`, "body: must be an object"},
		{"PUT", "/v1/watches/status/t1", `{"ttl": 5}`, "body: ttl: must be a string"},
		{"PUT", "/v1/watches/status/t1", `{"ttl": ["1h"]}`, "body: ttl: must be a string"},
		{"POST", "/v1/subscriptions/x/replay", `{"since": "2026-01-15T10:30:00Z", "types": "x"}`, "body: types: must be a list of strings"},
		{"POST", "/v1/subscriptions/x/replay", `{"since": "yesterday"}`, "since: must be an RFC 3339 time such as 2026-01-15T10:30:00Z"},
		{"POST", "/v1/subscriptions/x/replay", `{"since": 12}`, "since: must be an RFC 3339 time such as 2026-01-15T10:30:00Z"},
		{"POST", "/v1/subscriptions/x/replay", `{"since": "2026-01-15T10:30:00Z", "until": "soon"}`, "until: must be an RFC 3339 time such as 2026-01-15T10:30:00Z"},
		{"POST", "/v1/subscriptions/x/replay", `{}`, "since: required, an RFC 3339 time such as 2026-01-15T10:30:00Z"},
		{"POST", "/v1/subscriptions/x/replay", `{"since": null}`, "since: required, an RFC 3339 time such as 2026-01-15T10:30:00Z"},
		{"POST", "/v1/subscriptions", `{"name": "a", ` + hook + `, "headers": {"X-Env": "prod\r\nX-Evil: 1"}}`, "headers.X-Env: must not contain control characters such as CR, LF or NUL"},
		{"POST", "/v1/subscriptions", `{"name": "a", ` + hook + `, "headers": {"X-Env": "a\u0001b"}}`, "headers.X-Env: must not contain control characters such as CR, LF or NUL"},
		{"POST", "/v1/subscriptions", `{"name": "a", ` + hook + `, "headers": {"X-Env": "a\u0000b"}}`, "headers.X-Env: must not contain control characters such as CR, LF or NUL"},
		{"POST", "/v1/subscriptions", `{"name": "a", ` + hook + `, "headers": {"X-\u0007": "v"}}`, `headers["X-\a"]: invalid header name`},
		{"POST", "/v1/subscriptions", `{"name": "` + long + `", ` + hook + `}`, "name: must be at most 64 characters"},
		{"POST", "/v1/subscriptions", `{"name": "A b", ` + hook + `}`, "name: must contain only a-z, 0-9, _ and -"},
		{"POST", "/v1/subscriptions", `{"name": "a", ` + hook + `, "max_in_flight": 100000}`, "max_in_flight: must be from 1 to 1000"},
		{"POST", "/v1/subscriptions", `{"name": "a", ` + hook + `, "max_in_flight": 0}`, "max_in_flight: must be from 1 to 1000"},
		{"POST", "/v1/subscriptions", `{"name": "a", ` + hook + `, "timeout": "1h"}`, "timeout: must be from 100ms to 5m"},
		{"POST", "/v1/subscriptions", `{"name": "a", ` + hook + `, "timeout": "1ns"}`, "timeout: must be from 100ms to 5m"},
		{"POST", "/v1/subscriptions", `{"name": "a", "url": "https://example.com:0/hook"}`, "url: port must be a number from 1 to 65535"},
		{"POST", "/v1/subscriptions", `{"name": "a", "url": "https://example.com:65536/hook"}`, "url: port must be a number from 1 to 65535"},
		{"POST", "/v1/subscriptions", `{"name": "a", "url": "https://example.com:8x/hook"}`, "url: must be an absolute http or https URL"},
		{"POST", "/v1/subscriptions", `{"name": "a", "url": "https://example.com/", "secret": "tok\nen", "signature": {"scheme": "token", "header": "X-Token"}}`, "secret: must not contain control characters such as CR, LF or NUL"},
	}
	for _, c := range cases {
		code, msg := send(t, h, c.method, c.path, auth, c.body)
		if code != 422 || msg != c.want {
			t.Errorf("%s %s %s: %d %q, want 422 %q", c.method, c.path, c.body, code, msg, c.want)
		}
		if goInternals.MatchString(msg) {
			t.Errorf("%s %s %s: %q names Go internals", c.method, c.path, c.body, msg)
		}
	}
}
