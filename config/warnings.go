package config

import (
	"encoding/base64"
	"fmt"
	"path"
	"strings"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/signature"
)

// minSecretBytes is the shortest whsec_ key not warned about: Standard
// Webhooks asks for 24 to 64 random bytes.
const minSecretBytes = 24

// Warnings lists what is valid but probably not what the file means, each
// as "path: message": a subscription glob no source can emit, a short
// secret, a rule that misses items first seen in its target state. They
// never stop a config from loading.
func (c *Config) Warnings() []string {
	var out []string
	types := c.eventTypePatterns()
	for i := range c.Subscriptions {
		s := &c.Subscriptions[i]
		path := fmt.Sprintf("subscriptions[%d]", i)
		for j, g := range s.Events {
			if !anyIntersects(g, types) {
				out = append(out, fmt.Sprintf("%s.events[%d]: %q matches no event type any source emits (%s)", path, j, g, strings.Join(types, ", ")))
			}
		}
		if s.Scheme().Name != signature.SchemeStandard {
			continue
		}
		_, single := s.Secret.(string)
		for j, sec := range s.Secrets() {
			b64, ok := strings.CutPrefix(sec, signature.PrefixSecret)
			raw, err := base64.StdEncoding.DecodeString(b64)
			if !ok || err != nil || len(raw) >= minSecretBytes {
				continue
			}
			sp := path + ".secret"
			if !single {
				sp = fmt.Sprintf("%s[%d]", sp, j)
			}
			out = append(out, fmt.Sprintf("%s: the key is %d bytes; use at least %d random bytes (`pollrelay secret` prints a fresh 32-byte one)", sp, len(raw), minSecretBytes))
		}
	}
	for i := range c.Sources {
		out = append(out, bornFinished(&c.Sources[i], fmt.Sprintf("sources[%d]", i))...)
	}
	return out
}

// bornFinished warns about a list source's rule that fires on changed into
// chosen states but not on created: an item that first appears already in
// one of them (made and finished between two polls) is a created
// transition, and the rule never announces it. Watch sources report a
// watch's first terminal state as changed, so they are exempt.
func bornFinished(s *Source, path string) []string {
	if s.IsWatch() {
		return nil
	}
	var out []string
	for j, r := range s.Events {
		if r.On.Has(event.Changed) && !r.On.Has(event.Created) && !r.ToMatch.MatchesAll() {
			out = append(out, fmt.Sprintf("%s.events[%d]: fires on changed only, so an item first seen already in a to: state fires nothing; on: [created, changed] announces it too", path, j))
		}
	}
	return out
}

// eventTypePatterns lists the event types the sources can emit as globs:
// a rule's type template with each placeholder as `*`, `{source}.{kind}`
// for a source without rules, and the types pollrelay emits itself.
func (c *Config) eventTypePatterns() []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		if len(s.Events) == 0 {
			for _, k := range []string{event.Created, event.Changed, event.Deleted} {
				add(s.Name + "." + k)
			}
		}
		for _, r := range s.Events {
			t := globEscape(strings.ReplaceAll(r.Type, "{source}", s.Name))
			add(placeholderRE.ReplaceAllString(t, "*"))
		}
		if s.IsWatch() {
			add(s.Name + "." + event.WatchExpired)
		}
	}
	add("pollrelay.ping")
	return out
}

// globEscape quotes the glob metacharacters of literal text, leaving the
// placeholders' braces alone.
func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(s)
}

func anyIntersects(g string, patterns []string) bool {
	for _, p := range patterns {
		if globsIntersect(g, p) {
			return true
		}
	}
	return false
}

// globsIntersect reports whether some string matches both globs (the
// syntax of path.Match). Each glob is a list of tokens: `*`, or a pattern
// for one character (a literal, `?` or a class), tested with path.Match
// itself so the two cannot disagree on classes.
func globsIntersect(a, b string) bool {
	ta, tb := globTokens(a), globTokens(b)
	memo := map[[2]int]bool{}
	var meet func(i, j int) bool
	meet = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := memo[key]; ok {
			return v
		}
		memo[key] = false
		var ok bool
		switch {
		case i == len(ta) && j == len(tb):
			ok = true
		case i < len(ta) && ta[i] == "*":
			ok = meet(i+1, j) || (j < len(tb) && meet(i, j+1))
		case j < len(tb) && tb[j] == "*":
			ok = meet(i, j+1) || (i < len(ta) && meet(i+1, j))
		case i < len(ta) && j < len(tb):
			ok = sameChar(ta[i], tb[j]) && meet(i+1, j+1)
		}
		memo[key] = ok
		return ok
	}
	return meet(0, 0)
}

// sameChar reports whether one character matches both one-character
// patterns, trying printable ASCII and the characters the patterns name.
func sameChar(a, b string) bool {
	try := func(r rune) bool {
		ma, _ := path.Match(a, string(r))
		mb, _ := path.Match(b, string(r))
		return ma && mb
	}
	for r := rune(32); r < 127; r++ {
		if try(r) {
			return true
		}
	}
	for _, r := range a + b {
		if try(r) {
			return true
		}
	}
	return false
}

// globTokens splits a glob into `*` and one-character patterns.
func globTokens(g string) []string {
	var out []string
	for i := 0; i < len(g); {
		switch g[i] {
		case '*':
			if len(out) == 0 || out[len(out)-1] != "*" {
				out = append(out, "*")
			}
			i++
		case '[':
			end := strings.IndexByte(g[i+1:], ']')
			if end < 0 {
				out = append(out, `\[`)
				i++
				continue
			}
			out = append(out, g[i:i+end+2])
			i += end + 2
		case '\\':
			if i+1 < len(g) {
				out = append(out, g[i:i+2])
				i += 2
				continue
			}
			out = append(out, `\\`)
			i++
		default:
			r := []rune(g[i:])[0]
			out = append(out, string(r))
			i += len(string(r))
		}
	}
	return out
}
