package config

import (
	"regexp"
	"testing"
)

// goInternals matches what a message must never show a user: Go type
// names, fmt's verb errors and Go's time layout.
var goInternals = regexp.MustCompile(`interface \{\}|map\[|\[\]|reflect|%!|2006-01-02|15:04:05|unconvertible|!!(seq|map|str|int)`)

// quoted matches a Go-quoted string in a message.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// TestSubscriptionMessagesInWords gives every subscription key values of
// every JSON type, as an API client could, and checks that each problem
// says what is wanted in words.
func TestSubscriptionMessagesInWords(t *testing.T) {
	keys := []string{"name", "url", "method", "events", "secret", "signature", "headers", "payload",
		"timeout", "retry", "ordering", "max_in_flight", "disable_after", "insecure_skip_verify"}
	values := []any{[]any{1, "x"}, map[string]any{"a": []any{1}}, 3.5, true, "x", []any{map[string]any{}},
		nil, int64(-1), map[string]any{"schedule": map[string]any{}}}
	for _, k := range keys {
		for _, v := range values {
			spec := map[string]any{"name": "a", "url": "http://127.0.0.1:1/", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
			spec[k] = v
			_, err := ParseSubscription(spec)
			if err != nil && goInternals.MatchString(err.Error()) {
				t.Errorf("%s = %#v: %v", k, v, err)
			}
		}
	}
}
