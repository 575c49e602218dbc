package poller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/store"
)

// incremental is a source's incremental: compiled.
type incremental struct {
	param, bodyField string
	// from is jq over each item; cursor jq over each response. One is set.
	from, cursor *jqexpr.Expr
	lookback     time.Duration
	fullEvery    time.Duration
}

func compileIncremental(inc *config.Incremental) (*incremental, error) {
	c := &incremental{param: inc.Param, bodyField: inc.BodyField, lookback: inc.Lookback, fullEvery: inc.FullEvery}
	var err error
	if c.from, err = optionalJQ(inc.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if c.cursor, err = optionalJQ(inc.Cursor); err != nil {
		return nil, fmt.Errorf("cursor: %w", err)
	}
	return c, nil
}

// plan is what one poll of an incremental source asks for.
type plan struct {
	// full: no watermark is sent, and the listing may decide deletes.
	full bool
	// why says what made a poll full, for the log and probe.
	why string
	// sent is the watermark sent (after lookback), as JSON text.
	sent string
}

// planFor decides a poll of src from its stored state at now: full for
// the first poll, after a config change, with no watermark yet, or once
// full_every has passed since the last full listing.
func planFor(inc *incremental, ss store.SourceState, vkey string, now time.Time) plan {
	switch {
	case !ss.Baselined:
		return plan{full: true, why: "first poll"}
	case ss.Watermark == "":
		return plan{full: true, why: "no watermark yet"}
	case ss.WatermarkFor != vkey:
		return plan{full: true, why: "the source's request changed"}
	case ss.FullAt.IsZero() || now.Sub(ss.FullAt) >= inc.fullEvery:
		return plan{full: true, why: "full_every has passed since the last full listing"}
	}
	sent, err := lookedBack(ss.Watermark, inc)
	if err != nil {
		return plan{full: true, why: "the stored watermark is unreadable"}
	}
	return plan{sent: sent}
}

// lookedBack is the stored watermark less the lookback, as JSON text: a
// time earlier by it, or epoch seconds or milliseconds fewer by it. A
// cursor is sent back as it is.
func lookedBack(stored string, inc *incremental) (string, error) {
	if inc.cursor != nil || inc.lookback == 0 {
		return stored, nil
	}
	m, err := parseMark(json.RawMessage(stored))
	if err != nil {
		return "", err
	}
	switch {
	case !m.at.IsZero():
		b, _ := json.Marshal(m.at.Add(-inc.lookback).Format(time.RFC3339Nano))
		return string(b), nil
	default:
		return strconv.FormatFloat(m.n-inc.lookback.Seconds()*epochUnit(m.n), 'f', -1, 64), nil
	}
}

// mark is one `from` value: a time, or an epoch number.
type mark struct {
	raw string // JSON text, as the upstream gave it
	at  time.Time
	n   float64
}

// Where epoch numbers are taken for milliseconds, microseconds and
// nanoseconds: 1e11 seconds is in the year 5138, 1e11 ms in 1973.
const (
	epochMillis = 1e11
	epochMicros = 1e14
	epochNanos  = 1e17
)

// epochUnit is how many of n's units make a second.
func epochUnit(n float64) float64 {
	switch {
	case n >= epochNanos:
		return 1e9
	case n >= epochMicros:
		return 1e6
	case n >= epochMillis:
		return 1e3
	}
	return 1
}

// parseMark reads a `from` value: an RFC 3339 time or an epoch number.
func parseMark(raw json.RawMessage) (mark, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return mark{}, err
	}
	return markOf(v, string(raw))
}

func markOf(v any, raw string) (mark, error) {
	m := mark{raw: raw}
	if x, ok := v.(string); ok {
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return mark{}, fmt.Errorf("%s is neither an RFC 3339 time nor a number", clipText(raw))
		}
		m.at = t
		return m, nil
	}
	n, ok := number(v)
	if !ok {
		return mark{}, fmt.Errorf("%s is neither an RFC 3339 time nor a finite number", clipText(raw))
	}
	m.n = n
	return m, nil
}

// after reports whether m comes after o (o empty: always).
func (m mark) after(o mark) bool {
	switch {
	case o.raw == "":
		return true
	case !m.at.IsZero() && !o.at.IsZero():
		return m.at.After(o.at)
	case m.at.IsZero() && o.at.IsZero():
		return m.n > o.n
	}
	return false // a time beside a number: the first kind seen stays
}

func clipText(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// maxMark bounds a watermark: it travels in a URL and in logs. A longer
// value is no watermark.
const maxMark = 4 << 10

// pageMark is the watermark a page gives: the largest `from` over its
// items, or its cursor. bad is the first value that cannot be one (not a
// time or a number, empty, over maxMark): the items are applied all the
// same, and the stored watermark stays. The page is decoded again for it,
// which only incremental sources pay.
func pageMark(ctx context.Context, src *compiled, body []byte, best mark) (_ mark, bad error) {
	doc, err := jqexpr.Decode(body)
	if err != nil {
		return best, err
	}
	inc := src.inc
	note := func(err error) {
		if bad == nil {
			bad = err
		}
	}
	if inc.cursor != nil {
		vals, err := inc.cursor.All(ctx, doc)
		if err != nil {
			return best, fmt.Errorf("incremental.cursor: %w", err)
		}
		for _, v := range vals {
			if empty(v) {
				continue // no cursor on this page: the last one stands
			}
			raw, err := json.Marshal(v)
			if err != nil || len(raw) > maxMark {
				note(fmt.Errorf("incremental.cursor: a value of %d bytes, over %d", len(raw), maxMark))
				continue
			}
			best = mark{raw: string(raw)} // the last page's cursor wins
		}
		return best, bad
	}
	items := []any{doc}
	if src.items != nil {
		if items, err = src.items.All(ctx, doc); err != nil {
			return best, fmt.Errorf("items: %w", err)
		}
	}
	for _, it := range items {
		vals, err := inc.from.All(ctx, it)
		if err != nil {
			note(fmt.Errorf("incremental.from: %w", err))
			continue
		}
		for _, v := range vals {
			if v == nil {
				continue // an item without the field says nothing
			}
			raw, err := json.Marshal(v)
			if err == nil && len(raw) > maxMark {
				err = fmt.Errorf("a value of %d bytes, over %d", len(raw), maxMark)
			}
			var m mark
			if err == nil {
				m, err = markOf(v, string(raw))
			}
			if err != nil {
				note(fmt.Errorf("incremental.from: %w", err))
				continue
			}
			if m.after(best) {
				best = m
			}
		}
	}
	return best, bad
}

// incrementalKey names what a watermark of src means: its request (as
// validators are named) and how the watermark is read and sent, so a
// reload that changes either lists everything once instead of sending a
// value read another way.
func incrementalKey(src *compiled) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", validatorsFor(src), src.Incremental.Param, src.Incremental.BodyField, src.Incremental.From)
	fmt.Fprintf(h, "%s", src.Incremental.Cursor)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// request is the first page's URL and the body of every page of a poll.
type request struct {
	url  string
	body []byte
}

// plainRequest is src's request as configured: what every poll of a
// source without incremental: sends.
func plainRequest(src *compiled) request { return request{url: src.URL, body: src.body} }

// requestFor is src's request carrying p's watermark: in the query
// parameter (on every page the source's URL starts), or as a field of the
// JSON body.
func requestFor(src *compiled, p plan) (request, error) {
	r := plainRequest(src)
	if src.inc == nil || p.full {
		return r, nil
	}
	if src.inc.param != "" {
		r.url = withQuery(src.URL, src.inc.param, paramText(p.sent))
		return r, nil
	}
	// The body's other values go as they are: decoding them would round
	// big numbers and re-escape strings.
	body := map[string]json.RawMessage{}
	if len(src.body) > 0 {
		if err := json.Unmarshal(src.body, &body); err != nil {
			return r, fmt.Errorf("body: %w", err)
		}
	}
	body[src.inc.bodyField] = json.RawMessage(p.sent)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return r, fmt.Errorf("body: %w", err)
	}
	r.body = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return r, nil
}

// withQuery is raw with its query parameter name set to value: the rest
// of the query stays byte for byte (a parsed and re-encoded query would
// drop pairs such as "a;b" and reorder the rest).
func withQuery(raw, name, value string) string {
	base, frag, hasFrag := strings.Cut(raw, "#")
	path, query, _ := strings.Cut(base, "?")
	var kept []string
	if query != "" {
		for _, pair := range strings.Split(query, "&") {
			k, _, _ := strings.Cut(pair, "=")
			if key, err := url.QueryUnescape(k); err == nil && key == name {
				continue
			}
			kept = append(kept, pair)
		}
	}
	kept = append(kept, url.QueryEscape(name)+"="+url.QueryEscape(value))
	out := path + "?" + strings.Join(kept, "&")
	if hasFrag {
		out += "#" + frag
	}
	return out
}

// paramText is a JSON value as a query parameter: a string without its
// quotes, a number as written.
func paramText(raw string) string {
	var s string
	if json.Unmarshal([]byte(raw), &s) == nil {
		return s
	}
	return raw
}

// markFor is what a poll planned as p leaves for the next one. A listing
// cut short moves no watermark: its unfetched pages may hold items older
// than the largest seen; nor does one with a value that could not be read
// as one, which may have been the largest.
func markFor(p plan, lst listing, key string) *diff.Mark {
	m := &diff.Mark{For: key, Full: p.full && lst.complete}
	if lst.complete && lst.markErr == nil {
		m.Watermark = lst.mark.raw
	}
	return m
}
