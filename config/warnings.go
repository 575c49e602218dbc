package config

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/glob"
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
		if to, err := ParsePattern(r.To); err == nil && r.On.Has(event.Changed) && !r.On.Has(event.Created) && !to.Any {
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
			t := glob.Escape(strings.ReplaceAll(r.Type, "{source}", s.Name))
			add(placeholderRE.ReplaceAllString(t, "*"))
		}
		if s.IsWatch() {
			add(s.Name + "." + event.WatchExpired)
		}
	}
	add("pollrelay.ping")
	return out
}

func anyIntersects(g string, patterns []string) bool {
	for _, p := range patterns {
		if glob.Intersect(g, p) {
			return true
		}
	}
	return false
}
