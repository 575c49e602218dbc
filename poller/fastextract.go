package poller

import (
	"context"
	"encoding/json"
	"strings"
	"unsafe"

	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/jqexpr"
)

// parsePage decodes and extracts one page of a listing. It returns the
// decoded document only when pagination needs it (a `next` or `next_url`
// expression); otherwise the common shape of a listing is extracted straight
// from the body without building the document, which was most of the cost
// of polling a large listing (see fastExtract).
func parsePage(ctx context.Context, src *compiled, p *pagination, resp *response) ([]diff.Observation, any, error) {
	next, needDoc := nextPath(p)
	if !needDoc || next != nil {
		if obs, ok := fastExtract(src, resp.body); ok {
			if !needDoc {
				return obs, nil, nil
			}
			if doc, ok := nextDoc(resp.body, next); ok {
				return obs, doc, nil
			}
		}
	}
	doc, err := decode(resp.body, resp.status)
	if err != nil {
		return nil, nil, err
	}
	obs, err := extract(ctx, src, doc)
	return obs, doc, err
}

// nextPath returns the field path of a `next` or `next_url` expression
// that is one; needDoc reports whether pagination reads the document.
func nextPath(p *pagination) (path []string, needDoc bool) {
	if p == nil {
		return nil, false
	}
	if e := p.style.reads(); e != nil {
		return e.Path(), true
	}
	return nil, false
}

// nextDoc stands in for a page's decoded document when pagination reads
// only one field path of it: a document holding just that value at that
// path, which the path's jq expression reads the same. Decoding a whole
// page into Go values for one field cost more than extracting its items
// and kept several times the page's size alive while the listing was
// fetched. It reports false where jq would fail (a non-object on the
// path), so the general path reports the error. The body has been
// validated (fastExtract).
func nextDoc(body []byte, path []string) (any, bool) {
	v := string(body)
	for _, k := range path {
		if t := strings.Trim(v, " \t\r\n"); t == "" || t == "null" {
			return map[string]any{}, true // null.k is null in jq
		}
		var ok bool
		if v, _, ok = members(v, k, ""); !ok {
			return nil, false
		}
	}
	var val any
	if v != "" {
		var err error
		if val, err = jqexpr.Decode([]byte(v)); err != nil {
			return nil, false
		}
	}
	for i := len(path) - 1; i >= 0; i-- {
		val = map[string]any{path[i]: val}
	}
	return val, true
}

// fastExtract extracts a listing whose items are `.path[]`, whose id and
// state are field paths and whose object is the whole item, by scanning the
// body's text in place (jsonscan.go) instead of decoding it into Go values. It handles only the
// plain case — objects in an array, ids that are strings of printable ASCII
// or integers, states that are such strings, integers, booleans or null —
// and reports false for anything else, which then takes the general path
// with its exact jq semantics and error messages. Each item's canonical
// object is computed only if the item changed.
//
// Which path a page takes depends on every item in it, so the two must
// agree on every input, or an unchanged item would change whenever
// another item moved it to the other path. So the body is validated by
// encoding/json's own scanner (what it accepts, its depth bound), keys are
// read as encoding/json reads them (see members), and values are taken only
// where their raw text is what decoding and encoding them gives.
func fastExtract(src *compiled, body []byte) ([]diff.Observation, bool) {
	if src.items == nil || src.object != nil {
		return nil, false
	}
	items, ok := src.items.IterPath()
	idPath, statePath := src.id.Path(), src.state.Path()
	if !ok || len(idPath) == 0 || len(statePath) == 0 || len(body) == 0 {
		return nil, false
	}
	// The body is read fresh for each request and never modified, so it can
	// be viewed as a string without copying; the ids extracted are
	// substrings of it and live no longer than the poll's observations.
	doc := unsafe.String(&body[0], len(body))
	// The scan reads any text, so the body must be valid JSON before what
	// was read means anything: a truncated body would otherwise look like a
	// short, complete listing and delete the rest. Valid means what the
	// general path decodes, so encoding/json's scanner decides (gjson's
	// validator differed from it: no depth bound, and a body of ten million
	// `[` overflowed its recursion and the stack). Validation runs beside
	// the extraction, on the sidecar's other core when it has one.
	valid := make(chan bool, 1)
	go func() { valid <- json.Valid(body) }()
	obs, ok := fastItems(doc, items, idPath, statePath)
	if !ok || !<-valid {
		return nil, false
	}
	return obs, ok
}

// fastItems is fastExtract's walk over the document's text.
func fastItems(arr string, items, idPath, statePath []string) ([]diff.Observation, bool) {
	for _, k := range items {
		var ok bool
		if arr, _, ok = members(arr, k, ""); !ok {
			return nil, false
		}
	}
	// Items are rarely smaller than 100 bytes: a capacity from the body's
	// size saves growing (and copying) a large slice many times.
	out := make([]diff.Observation, 0, min(len(arr)/100+1, 1<<20))
	// A listing has few distinct states: sharing one copy of each spares an
	// allocation per item. Nothing modifies an observation's state.
	states := map[string]json.RawMessage{}
	ok := elements(arr, func(it string) bool {
		idv, sv, ok := members(it, idPath[0], statePath[0])
		if !ok {
			return false
		}
		idv, found, ok := field(idv, idPath[1:])
		id := plainID(idv, found)
		if !ok || id == "" {
			return false
		}
		if sv, found, ok = field(sv, statePath[1:]); !ok {
			return false
		}
		state, seen := states[sv]
		if !seen {
			if state = plainState(sv, found); state == nil {
				return false
			}
			if len(states) < 256 {
				states[sv] = state
			}
		}
		out = append(out, diff.Observation{ID: id, State: state, ObjectRaw: it})
		return true
	})
	return out, ok
}

// field follows the rest of a path from v, the raw value of its first
// key ("" when absent), like jq does: a missing key or null yields null
// (found false). ok is false where jq would fail (a non-object in the way),
// to leave the error to it.
func field(v string, rest []string) (raw string, found, ok bool) {
	for _, k := range rest {
		if v == "" || v == "null" {
			return "", false, true
		}
		if v, _, ok = members(v, k, ""); !ok {
			return "", false, false
		}
	}
	return v, v != "" && v != "null", true
}

// plainID returns the item key of a plain string or integer id, or "".
func plainID(raw string, found bool) string {
	switch {
	case !found:
	case raw[0] == '"':
		if plainString(raw) && len(raw) > 2 {
			return raw[1 : len(raw)-1]
		}
	case plainInt(raw):
		return raw
	}
	return ""
}

// plainState returns the canonical JSON of a plain state, or nil. The raw
// text is already canonical for these values.
func plainState(raw string, found bool) json.RawMessage {
	switch {
	case !found:
		return event.Null
	case raw[0] == '"':
		if plainString(raw) {
			return json.RawMessage(raw)
		}
	case plainInt(raw), raw == "true", raw == "false":
		return json.RawMessage(raw)
	}
	return nil
}

// plainString reports whether a raw JSON string has no escapes and only
// printable ASCII, so it reads and encodes the same as its raw text.
func plainString(raw string) bool {
	for i := 1; i < len(raw)-1; i++ {
		if c := raw[i]; c < 0x20 || c > 0x7e || c == '\\' || c == '"' {
			return false
		}
	}
	return len(raw) >= 2
}

// plainInt reports whether a raw JSON number is an integer that decodes to
// an int and encodes back to the same text.
func plainInt(raw string) bool {
	s := raw
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return raw != "-0"
}
