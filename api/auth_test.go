package api

import (
	"strings"
	"testing"
)

// FuzzBearerToken: whatever the header, a token read from it has no white
// space at its ends, comes only from a Bearer scheme in some case, and any
// spelling of the scheme and spacing around a token gives back the token.
func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer tok", "bEaReR", " \t ", "tok-0123456789abcdef")
	f.Add("Basic dXNlcjpwYXNz", "BEARER", "\t", "a b")
	f.Add("", "bearer", "  ", "x")
	f.Fuzz(func(t *testing.T, header, scheme, space, token string) {
		if got, ok := bearerToken(header); ok {
			if got == "" || strings.Trim(got, " \t") != got {
				t.Fatalf("%q: token %q", header, got)
			}
			rest := strings.TrimLeft(header, " \t")
			if len(rest) < 7 || !strings.EqualFold(rest[:6], "bearer") || (rest[6] != ' ' && rest[6] != '\t') {
				t.Fatalf("%q: read a token without the Bearer scheme", header)
			}
		}
		if !strings.EqualFold(scheme, "bearer") || space == "" || strings.Trim(space, " \t") != "" {
			return
		}
		token = strings.Trim(token, " \t")
		if token == "" {
			return
		}
		if got, ok := bearerToken(space + scheme + space + token + space); !ok || got != token {
			t.Fatalf("%q %q %q: got %q %v", scheme, space, token, got, ok)
		}
	})
}
