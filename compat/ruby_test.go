package compat

import (
	"encoding/json"
	"strings"
	"testing"
)

// DAM's 422 quotes a value as Ruby's #inspect does once Rails has parsed
// the JSON body.
func TestRubyInspect(t *testing.T) {
	cases := map[string]string{
		`null`:                     `nil`,
		`"https://x"`:              `"https://x"`,
		`5`:                        `5`,
		`1.5`:                      `1.5`,
		`true`:                     `true`,
		`["ASSET_ADDED", 1, null]`: `["ASSET_ADDED", 1, nil]`,
		`{"b": 1, "a": "x"}`:       `{"a"=>"x", "b"=>1}`,
		`"say \"hi\"\n\\"`:         `"say \"hi\"\n\\"`,
		`"#{x} #$y #@z #"`:         `"\#{x} \#$y \#@z #"`,
		`"\u0001"`:                 `"\x01"`,
	}
	for in, want := range cases {
		dec := json.NewDecoder(strings.NewReader(in))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if got := rubyInspect(v); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
