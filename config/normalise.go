package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/jqexpr"
)

// normalise fills the sources' defaults that depend on other fields and
// every derived field (subscriptions normalise themselves when checked).
// Problems found on the way (a jq expression that does not compile, an
// unparseable rate) are recorded; validate checks the rest.
func normalise(c *Config, p *problems) {
	for i := range c.Sources {
		normaliseSource(&c.Sources[i], fmt.Sprintf("sources[%d]", i), p)
	}
}

func normaliseSource(s *Source, path string, p *problems) {
	s.Method = strings.ToUpper(strings.TrimSpace(s.Method))
	if s.Adaptive {
		// Unset bounds default to 1s and 10m; the fallback interval (the
		// default 15s) stays inside them so a state without history is
		// polled as the user bounded it.
		if s.MinInterval == 0 {
			s.MinInterval = defaultMinInterval
		}
		if s.MaxInterval == 0 {
			s.MaxInterval = max(defaultMaxInterval, s.MinInterval)
		}
		s.Interval = min(max(s.Interval, s.MinInterval), s.MaxInterval)
	}
	if s.Timeout == 0 {
		// 10s, or two thirds of a shorter interval: a default must not
		// break the "timeout < interval" rule the user never touched.
		s.Timeout = defaultSourceTimeout
		if s.Interval > 0 {
			s.Timeout = min(defaultSourceTimeout, s.Interval*2/3)
		}
	}

	s.ItemsExpr = compile(path+".items", s.Items, false, p)
	s.IDExpr = compile(path+".id", s.ID, true, p)
	s.StateExpr = compile(path+".state", s.State, true, p)
	s.ObjectExpr = compile(path+".object", s.Object, false, p)

	switch b := s.Body.(type) {
	case nil:
	case string:
		s.BodyBytes = []byte(b)
	default:
		enc, err := event.Canonical(b)
		if err != nil {
			p.add(path+".body", "cannot be encoded as JSON: %v", err)
		}
		s.BodyBytes = enc
	}

	if s.Rate != "" {
		r, ok := parseRate(s.Rate)
		if !ok {
			p.add(path+".rate", "must look like 5/s, 300/m or 1000/h")
		}
		s.RateLimit = r
	}

	s.TerminalStates = nil
	for j, t := range s.Terminal {
		enc, err := event.Canonical(t)
		if err != nil {
			p.add(fmt.Sprintf("%s.terminal[%d]", path, j), "%v", err)
			continue
		}
		s.TerminalStates = append(s.TerminalStates, enc)
	}

	if pg := s.Pagination; pg != nil {
		if pg.MaxPages == 0 {
			pg.MaxPages = defaultMaxPages
		}
		if pg.Limit == 0 && pg.LimitParam != "" {
			pg.Limit = defaultPageLimit
		}
		pg.NextExpr = compile(path+".pagination.next", pg.Next, false, p)
		pg.NextURLExpr = compile(path+".pagination.next_url", pg.NextURL, false, p)
	}

	for j := range s.Events {
		normaliseRule(&s.Events[j], fmt.Sprintf("%s.events[%d]", path, j), p)
	}
}

func normaliseRule(r *Rule, path string, p *problems) {
	var kinds Kinds
	for _, k := range r.On {
		if k = strings.TrimSpace(k); k != "" && !kinds.Has(k) {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		kinds = Kinds{event.Changed}
	}
	r.On = kinds
	r.FromMatch = matcher(path+".from", r.From, p)
	r.ToMatch = matcher(path+".to", r.To, p)
	r.StateMatch = matcher(path+".state", r.State, p)
	r.WhenExpr = compile(path+".when", r.When, false, p)
	r.MembersExpr = compile(path+".members", r.Members, false, p)
}

// matcher builds a Matcher, putting the index NewMatcher's error names into
// the path: `to[2]: bad glob "[x"`, or `to: …` for a single value.
func matcher(path string, v any, p *problems) Matcher {
	m, err := NewMatcher(v)
	if err == nil {
		return m
	}
	msg := err.Error()
	idx, rest, ok := strings.Cut(msg, ": ")
	switch _, isList := v.([]any); {
	case ok && !isList && idx == "[0]":
		p.add(path, "%s", rest)
	case ok && strings.HasPrefix(idx, "["):
		p.add(path+idx, "%s", rest)
	default:
		p.add(path, "%s", msg)
	}
	return m
}

// compile compiles a jq expression; an empty one is nil, or a problem when
// required. The jqexpr error already quotes the expression.
func compile(path, src string, required bool, p *problems) *jqexpr.Expr {
	if strings.TrimSpace(src) == "" {
		if required {
			p.add(path, "required")
		}
		return nil
	}
	e, err := compileInterned(src)
	if err != nil {
		p.add(path, "%v", err)
		return nil
	}
	return e
}

var rateRE = regexp.MustCompile(`^\s*(\d+(?:\.\d+)?)\s*/\s*([smh])\s*$`)

// parseRate reads "N/s", "N/m" or "N/h" as requests per second.
func parseRate(s string) (float64, bool) {
	m := rateRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	switch m[2] {
	case "m":
		n /= 60
	case "h":
		n /= 3600
	}
	return n, true
}
