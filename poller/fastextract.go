package poller

import (
	"context"
	"encoding/json"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/jqexpr"
)

// parsePage decodes and extracts one page of a listing. It returns the
// decoded document only when pagination needs it (a `next` or `next_url`
// expression); otherwise the common shape of a listing is extracted straight
// from the body without building the document, which was most of the cost
// of polling a large listing (see fastExtract).
func parsePage(ctx context.Context, src *config.Source, p *config.Pagination, resp *response) ([]diff.Observation, any, error) {
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
func nextPath(p *config.Pagination) (path []string, needDoc bool) {
	switch {
	case p == nil:
		return nil, false
	case p.NextExpr != nil:
		return p.NextExpr.Path(), true
	case p.NextURLExpr != nil:
		return p.NextURLExpr.Path(), true
	}
	return nil, false
}

// nextDoc stands in for a page's decoded document when pagination reads
// only one field path of it: a document holding just that value at that
// path, which the path's jq expression reads the same. Decoding a whole
// page into Go values for one field cost more than extracting its items
// and kept several times the page's size alive while the listing was
// fetched. It reports false where jq would fail (a non-object on the
// path), so the general path reports the error.
func nextDoc(body []byte, path []string) (any, bool) {
	v := gjson.ParseBytes(body)
	for _, k := range path {
		if !v.Exists() || v.Type == gjson.Null {
			return map[string]any{}, true // null.k is null in jq
		}
		if !v.IsObject() {
			return nil, false
		}
		v = v.Get(k)
	}
	var val any
	if v.Exists() {
		var err error
		if val, err = jqexpr.Decode([]byte(v.Raw)); err != nil {
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
// body with gjson instead of decoding it into Go values. It handles only the
// plain case — objects in an array, ids that are strings of printable ASCII
// or integers, states that are such strings, integers, booleans or null —
// and reports false for anything else, which then takes the general path
// with its exact jq semantics and error messages. Each item's canonical
// object is computed only if the item changed.
//
// One difference from the general path: in an object with a duplicated
// key, gjson reads the first occurrence where encoding/json keeps the last.
func fastExtract(src *config.Source, body []byte) ([]diff.Observation, bool) {
	if src.ItemsExpr == nil || src.ObjectExpr != nil {
		return nil, false
	}
	items, ok := src.ItemsExpr.IterPath()
	idPath, statePath := src.IDExpr.Path(), src.StateExpr.Path()
	if !ok || idPath == nil || statePath == nil || len(body) == 0 {
		return nil, false
	}
	// The body is read fresh for each request and never modified, so it can
	// be viewed as a string without copying; the ids extracted are
	// substrings of it and live no longer than the poll's observations.
	doc := unsafe.String(&body[0], len(body))
	// gjson reads any text, so the body must be valid JSON before what was
	// read means anything: a truncated body would otherwise look like a
	// short, complete listing and delete the rest. Validation runs beside
	// the extraction, on the sidecar's other core when it has one.
	valid := make(chan bool, 1)
	go func() { valid <- gjson.Valid(doc) }()
	obs, ok := fastItems(gjson.Parse(doc), items, idPath, statePath)
	if !ok || !<-valid {
		return nil, false
	}
	return obs, ok
}

// fastItems is fastExtract's walk over the parsed document.
func fastItems(arr gjson.Result, items, idPath, statePath []string) ([]diff.Observation, bool) {
	for _, k := range items {
		if !arr.IsObject() {
			return nil, false
		}
		arr = arr.Get(k)
	}
	if !arr.IsArray() {
		return nil, false
	}
	// Items are rarely smaller than 100 bytes: a capacity from the body's
	// size saves growing (and copying) a large slice many times.
	out := make([]diff.Observation, 0, min(len(arr.Raw)/100+1, 1<<20))
	ok := true
	// A listing has few distinct states: sharing one copy of each spares an
	// allocation per item. Nothing modifies an observation's state.
	states := map[string]json.RawMessage{}
	arr.ForEach(func(_, it gjson.Result) bool {
		if !it.IsObject() {
			ok = false
			return false
		}
		idv, found := field(it, idPath)
		id := plainID(idv, found)
		if id == "" {
			ok = false
			return false
		}
		sv, found := field(it, statePath)
		state, seen := states[sv.Raw]
		if !seen {
			if state = plainState(sv, found); state == nil {
				ok = false
				return false
			}
			if len(states) < 256 {
				states[sv.Raw] = state
			}
		}
		out = append(out, diff.Observation{ID: id, State: state, ObjectRaw: it.Raw})
		return true
	})
	return out, ok
}

// field follows path from an object like jq does: a missing key or null
// yields null (found false). It reports found with a non-object in the way,
// which plainState and plainID then reject so jq can report the error.
func field(v gjson.Result, path []string) (gjson.Result, bool) {
	for i, k := range path {
		if i > 0 {
			if !v.Exists() || v.Type == gjson.Null {
				return gjson.Result{}, false
			}
			if !v.IsObject() {
				return gjson.Result{Type: gjson.JSON, Raw: "[]"}, true // not plain
			}
		}
		v = v.Get(k)
	}
	return v, v.Exists() && v.Type != gjson.Null
}

// plainID returns the item key of a plain string or integer id, or "".
func plainID(v gjson.Result, found bool) string {
	if !found {
		return ""
	}
	switch v.Type {
	case gjson.String:
		if plainString(v.Raw) && len(v.Raw) > 2 {
			return v.Raw[1 : len(v.Raw)-1]
		}
	case gjson.Number:
		if plainInt(v.Raw) {
			return v.Raw
		}
	}
	return ""
}

// plainState returns the canonical JSON of a plain state, or nil. The raw
// text is already canonical for these values.
func plainState(v gjson.Result, found bool) json.RawMessage {
	if !found {
		return event.Null
	}
	switch v.Type {
	case gjson.String:
		if plainString(v.Raw) {
			return json.RawMessage(v.Raw)
		}
	case gjson.Number:
		if plainInt(v.Raw) {
			return json.RawMessage(v.Raw)
		}
	case gjson.True, gjson.False:
		return json.RawMessage(v.Raw)
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
