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
// checks the values only a compiler can judge (jq, rule patterns, body,
// rate); subscriptions normalise themselves when checked. Problems found
// on the way are recorded; validate checks the rest. adaptive holds the
// indexes of the sources with `interval: adaptive`.
func normalise(c *Config, adaptive map[int]bool, p *problems) {
	for i := range c.Sources {
		normaliseSource(&c.Sources[i], fmt.Sprintf("sources[%d]", i), adaptive[i], p)
	}
}

func normaliseSource(s *Source, path string, adaptive bool, p *problems) {
	s.Method = strings.ToUpper(strings.TrimSpace(s.Method))
	if adaptive {
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

	if inc := s.Incremental; inc != nil {
		if inc.FullEvery == 0 {
			inc.FullEvery = DefaultFullEvery
		}
		checkJQ(path+".incremental.from", inc.From, false, p)
		checkJQ(path+".incremental.cursor", inc.Cursor, false, p)
	}
	checkJQ(path+".progress", s.Progress, false, p)
	checkJQ(path+".eta", s.ETA, false, p)
	checkJQ(path+".items", s.Items, false, p)
	checkJQ(path+".id", s.ID, true, p)
	checkJQ(path+".state", s.State, true, p)
	checkJQ(path+".object", s.Object, false, p)

	if _, err := s.RequestBody(); err != nil {
		p.add(path+".body", "cannot be encoded as JSON: %v", err)
	}
	if s.Rate != "" {
		if _, ok := ParseRate(s.Rate); !ok {
			p.add(path+".rate", "must look like 5/s, 300/m or 1000/h")
		}
	}
	for j, t := range s.Terminal {
		if _, err := event.Canonical(t); err != nil {
			p.add(fmt.Sprintf("%s.terminal[%d]", path, j), "%v", err)
		}
	}

	if pg := s.Pagination; pg != nil {
		if pg.MaxPages == 0 {
			pg.MaxPages = defaultMaxPages
		}
		if pg.Limit == 0 && pg.LimitParam != "" {
			pg.Limit = defaultPageLimit
		}
		checkJQ(path+".pagination.next", pg.Next, false, p)
		checkJQ(path+".pagination.next_url", pg.NextURL, false, p)
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
	checkPattern(path+".from", r.From, p)
	checkPattern(path+".to", r.To, p)
	checkPattern(path+".state", r.State, p)
	checkJQ(path+".when", r.When, false, p)
	checkJQ(path+".members", r.Members, false, p)
}

// checkPattern checks a rule's pattern, putting the index ParsePattern's
// error names into the path: `to[2]: bad glob "[x"`, or `to: …` for a
// single value.
func checkPattern(path string, v any, p *problems) {
	_, err := ParsePattern(v)
	if err == nil {
		return
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
}

// checkJQ reports a source's jq expression that does not compile, or an
// empty one that is required. What it compiles is dropped: the poller and
// the diff compile the expression when they start the source, through the
// same jqexpr.Shared, which hands them this one while it is still alive.
func checkJQ(path, src string, required bool, p *problems) {
	compile(path, src, required, p)
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
	e, err := jqexpr.Shared(src)
	if err != nil {
		p.add(path, "%v", err)
		return nil
	}
	return e
}

var rateRE = regexp.MustCompile(`^\s*(\d+(?:\.\d+)?)\s*/\s*([smh])\s*$`)

// ParseRate reads a source's `rate:`, "N/s", "N/m" or "N/h", as requests
// per second.
func ParseRate(s string) (float64, bool) {
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
