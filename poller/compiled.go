package poller

import (
	"fmt"
	"strings"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/schedule"
)

// compiled is a source as its loop polls it: the config's plain values,
// with what is derived from them built once, when the loop starts: the jq
// that extracts items, the request body, the rate, the pagination style,
// and the diff's rules. A reload compares configs, so an unchanged source
// keeps its loop and what it compiled.
type compiled struct {
	*diff.Source
	// items and object are nil when the source has none.
	items, id, state, object *jqexpr.Expr
	// body is the request body as sent; nil without one.
	body []byte
	// rate is requests per second; 0 = unlimited.
	rate float64
	// pages is nil for a source without pagination.
	pages *pagination
	// digest is the config's digest the source's lease carries.
	digest string
	// cron is the source's schedule:; nil polls every Interval.
	cron *schedule.Cron
	// inc is the source's incremental:; nil lists everything every poll.
	inc *incremental
	// incKey names what a stored watermark means: the request and the
	// incremental settings it was read under.
	incKey string
	// progress and eta are the adaptive schedule's hints; nil without.
	progress, eta *jqexpr.Expr
}

// compile builds what polling src takes. A config that loaded compiles:
// the config checked each value compiled here, and an error names the one
// that fails by its key.
func compile(src *config.Source) (*compiled, error) {
	d, err := diff.Compile(src)
	if err != nil {
		return nil, err
	}
	c := &compiled{Source: d, digest: configDigest(src)}
	fail := func(key string, err error) (*compiled, error) {
		return nil, fmt.Errorf("source %s: %s: %w", src.Name, key, err)
	}
	if c.items, err = optionalJQ(src.Items); err != nil {
		return fail("items", err)
	}
	if c.id, err = jqexpr.Shared(src.ID); err != nil {
		return fail("id", err)
	}
	if c.state, err = jqexpr.Shared(src.State); err != nil {
		return fail("state", err)
	}
	if c.object, err = optionalJQ(src.Object); err != nil {
		return fail("object", err)
	}
	if c.body, err = src.RequestBody(); err != nil {
		return fail("body", err)
	}
	if src.Rate != "" {
		var ok bool
		if c.rate, ok = config.ParseRate(src.Rate); !ok {
			return fail("rate", fmt.Errorf("%q is not like 5/s, 300/m or 1000/h", src.Rate))
		}
	}
	if c.pages, err = newPagination(src.Pagination); err != nil {
		return fail("pagination", err)
	}
	if c.progress, err = optionalJQ(src.Progress); err != nil {
		return fail("progress", err)
	}
	if c.eta, err = optionalJQ(src.ETA); err != nil {
		return fail("eta", err)
	}
	if src.Incremental != nil {
		if c.inc, err = compileIncremental(src.Incremental); err != nil {
			return fail("incremental", err)
		}
	}
	defer func() {
		if c.inc != nil {
			c.incKey = incrementalKey(c)
		}
	}()
	if sc := src.Schedule; sc != nil {
		if c.cron, err = schedule.Parse(sc.Cron, sc.Timezone); err != nil {
			return fail("schedule", err)
		}
	}
	return c, nil
}

// optionalJQ compiles src, or returns nil for an empty one.
func optionalJQ(src string) (*jqexpr.Expr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	return jqexpr.Shared(src)
}

// cfg is the source's configuration.
func (c *compiled) cfg() *config.Source { return c.Source.Source }
