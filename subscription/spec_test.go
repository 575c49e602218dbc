package subscription

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/check"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	var ve *check.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T), want a *check.ValidationError", err, err)
	}
	return ve.Problems
}

func TestParseTakesValuesLiterally(t *testing.T) {
	s, err := Parse(map[string]any{
		"name": "api-sub", "url": "https://example.com/hook",
		"events": []any{"job.*"}, "headers": map[string]any{"X-Env": "${HOME}"},
	}, []string{testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if s.Spec.Headers["X-Env"] != "${HOME}" {
		t.Errorf("an API value was env-expanded: %q", s.Spec.Headers["X-Env"])
	}
	if s.Spec.Method != "POST" || s.Spec.Ordering != "resource" || len(s.Spec.Retry.Schedule) != 7 {
		t.Errorf("defaults not applied: %+v", s.Spec)
	}
	if s.Spec.Secret != nil || s.ManagedBy != ManagedByAPI {
		t.Errorf("an API subscription keeps its secret in its spec, or says it is %q", s.ManagedBy)
	}
	_, err = Parse(map[string]any{"name": "x", "url": "ftp://nope", "bogus": 1}, []string{testSecret})
	want := []string{"bogus: unknown key", "url: must be an absolute http or https URL"}
	if got := problemsOf(t, err); !slices.Equal(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
}

// TestPathsInFileAndBody: one check, two ways to name a problem: under
// subscriptions[i] in a file, from the top in a body.
func TestPathsInFileAndBody(t *testing.T) {
	spec := Default()
	spec.Name, spec.URL, spec.Secret = "a", "http://127.0.0.1:1/", []any{testSecret, "plain", 7}
	spec.Events = []string{"ok.*", "[x"}
	spec.Headers = map[string]string{"X-Api.Key": "a\nb"}
	p := &check.Problems{}
	spec.Check("subscriptions[2]", p)
	want := []string{
		`subscriptions[2].events[1]: bad glob "[x"`,
		`subscriptions[2].headers["X-Api.Key"]: must not contain control characters such as CR, LF or NUL`,
		"subscriptions[2].secret[1]: must be whsec_<base64> or whsk_<base64>: a Standard Webhooks secret is whsec_ followed by the base64 of 24 to 64 random bytes; `pollrelay secret` prints a fresh one",
		"subscriptions[2].secret[2]: must be a string",
	}
	if got := problemsOf(t, p.Err()); !slices.Equal(got, want) {
		t.Errorf("in a file:\n  %q\nwant\n  %q", got, want)
	}
	_, err := Parse(map[string]any{"name": "a", "url": "http://127.0.0.1:1/", "events": []any{"ok.*", "[x"},
		"signature": map[string]any{"scheme": "token", "header": "X Token"}}, []string{"tok"})
	want = []string{`events[1]: bad glob "[x"`, `signature: scheme token: header "X Token": invalid character ' '`}
	if got := problemsOf(t, err); !slices.Equal(got, want) {
		t.Errorf("in a body:\n  %q\nwant\n  %q", got, want)
	}
}

// TestSpecJSONRoundTrip: the JSON a Spec shows reads back as the same
// Spec, and checking a checked Spec changes nothing, so the API can show
// a subscription, store it and take it back in one form.
func TestSpecJSONRoundTrip(t *testing.T) {
	jitter := 0.0
	for _, spec := range []Spec{
		{Name: "plain", URL: "https://x/", Secret: testSecret},
		{Name: "every", URL: "https://x/", Secret: testSecret, Method: "put", Retry: Retry{Every: 30 * time.Minute, For: 24 * time.Hour}},
		{Name: "none", URL: "https://x/", Secret: "k", Retry: Retry{Schedule: []time.Duration{}, Jitter: &jitter},
			Signature: map[string]any{"scheme": "hmac-sha256", "header": "X-Sig", "encoding": "base64"},
			Headers:   map[string]string{"X-Env": "<prod>"}, Payload: `{t: .type} | tojson | "<\(.)>"`, DisableAfter: time.Hour},
		{Name: "tok", URL: "https://x/", Secret: "t", Signature: map[string]any{"scheme": "token", "header": "x-token"}, TestEvent: "PING", InsecureSkipVerify: true},
	} {
		defaults := Default()
		if spec.Method == "" {
			spec.Method = defaults.Method
		}
		spec.Timeout, spec.Ordering, spec.MaxInFlight = defaults.Timeout, defaults.Ordering, defaults.MaxInFlight
		p := &check.Problems{}
		spec.Check("", p)
		if err := p.Err(); err != nil {
			t.Fatalf("%s: %v", spec.Name, err)
		}
		raw, err := spec.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var tree map[string]any
		if err := json.Unmarshal(raw, &tree); err != nil {
			t.Fatalf("%s: %s: %v", spec.Name, raw, err)
		}
		back, err := Parse(tree, spec.Secrets())
		if err != nil {
			t.Fatalf("%s: %s does not read back: %v", spec.Name, raw, err)
		}
		again, _ := back.Spec.MarshalJSON()
		if string(again) != string(raw) {
			t.Errorf("%s:\n %s\nread back as\n %s", spec.Name, raw, again)
		}
		if back.Spec.Scheme() != spec.Scheme() || !reflect.DeepEqual(back.Spec.Retry, spec.Retry) {
			t.Errorf("%s: scheme %+v retry %+v, want %+v %+v", spec.Name, back.Spec.Scheme(), back.Spec.Retry, spec.Scheme(), spec.Retry)
		}
		checked := spec
		spec.Check("", p)
		if !reflect.DeepEqual(checked, spec) || p.Err() != nil {
			t.Errorf("%s: a second check changed it or found %v", spec.Name, p.Err())
		}
	}
}

// goInternals matches what a message must never show a user: Go type
// names, fmt's verb errors and Go's time layout.
var goInternals = regexp.MustCompile(`interface \{\}|map\[|\[\]|reflect|%!|2006-01-02|15:04:05|unconvertible|!!(seq|map|str|int)`)

// TestMessagesInWords gives every subscription key values of every JSON
// type, as an API client could, and checks that each problem says what is
// wanted in words.
func TestMessagesInWords(t *testing.T) {
	keys := []string{"name", "url", "method", "events", "secret", "signature", "headers", "payload",
		"timeout", "retry", "ordering", "max_in_flight", "disable_after", "insecure_skip_verify"}
	values := []any{[]any{1, "x"}, map[string]any{"a": []any{1}}, 3.5, true, "x", []any{map[string]any{}},
		nil, int64(-1), map[string]any{"schedule": map[string]any{}}}
	for _, k := range keys {
		for _, v := range values {
			body := map[string]any{"name": "a", "url": "http://127.0.0.1:1/", "secret": testSecret}
			body[k] = v
			p := &check.Problems{}
			spec := decode(body, p)
			spec.Check("", p)
			if err := p.Err(); err != nil && goInternals.MatchString(err.Error()) {
				t.Errorf("%s = %#v: %v", k, v, err)
			}
		}
	}
}
