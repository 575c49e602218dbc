package config

import "strings"

// MinAPITokenLen is the shortest api_token accepted: a shorter one can be
// guessed. The bounds shared with subscriptions are in internal/check.
const MinAPITokenLen = 16

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
