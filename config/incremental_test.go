package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// incremental: names one carrier (param or body_field) and one source of
// the watermark (from or cursor), on a list source; full_every defaults
// to an hour and is at least the interval.
func TestIncremental(t *testing.T) {
	base := "sources:\n  - {name: a, url: \"http://127.0.0.1/x\", items: \".[]\", "
	c := mustParse(t, base+"incremental: {param: updated_since, from: .updated_at, lookback: 1m}}\n", noEnv)
	if inc := c.Sources[0].Incremental; inc == nil || inc.FullEvery != time.Hour || inc.Lookback != time.Minute {
		t.Errorf("incremental = %+v", inc)
	}
	mustParse(t, base+"method: POST, body: {q: 1}, incremental: {body_field: since, cursor: .next_sync}}\n", noEnv)
	cases := map[string][]string{
		"incremental: {from: .u}}":                                                       {"sources[0].incremental: set one of param (a query parameter) or body_field (a field of the JSON body)"},
		"incremental: {param: p}}":                                                       {"sources[0].incremental: set one of from (jq over each item) or cursor (jq over each response)"},
		"incremental: {param: p, from: .u, cursor: .c}}":                                 {"sources[0].incremental: set one of from (jq over each item) or cursor (jq over each response)"},
		"incremental: {body_field: s, from: .u}}":                                        {"sources[0].incremental.body_field: needs method POST or PUT: a GET sends no body"},
		"method: POST, body: 'q=1', incremental: {body_field: s, from: .u}}":             {"sources[0].incremental.body_field: needs a body given as a mapping, not as a string"},
		"incremental: {param: p, cursor: .c, lookback: 1m}}":                             {"sources[0].incremental.lookback: only valid with from: a cursor is sent back as it is"},
		"incremental: {param: p, from: .u, lookback: -1s}}":                              {"sources[0].incremental.lookback: must not be negative"},
		"interval: 1h, incremental: {param: p, from: .u, full_every: 30m}}":              {"sources[0].incremental.full_every: must be at least the time between polls (1h)"},
		"incremental: {param: p, from: '.u |'}}":                                         {"sources[0].incremental.from: "},
		"pagination: {next: .n, param: cursor}, incremental: {param: cursor, from: .u}}": {`sources[0].incremental.param: "cursor" is a pagination parameter too: the watermark would replace it`},
	}
	for tail, want := range cases {
		_, err := ParseWith([]byte(base+tail+"\n"), noEnv)
		if err == nil {
			t.Errorf("%s: no error", tail)
			continue
		}
		got := problemsOf(t, err)
		if len(got) != len(want) || !strings.HasPrefix(got[0], want[0]) || (len(want[0]) > 40 && !slices.Equal(got, want)) {
			t.Errorf("%s:\n  %s\nwant:\n  %s", tail, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	_, err := ParseWith([]byte("sources:\n  - {name: w, url: 'http://127.0.0.1/{id}', terminal: [done], incremental: {param: p, from: .u}}\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "sources[0].incremental: applies to list sources") {
		t.Errorf("a watch source: %v", err)
	}
}
