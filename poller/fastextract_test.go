package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/internal/benchdata"
	"github.com/pollrelay/pollrelay/jqexpr"
)

// The fast path must agree with the general one wherever it answers, and
// leave to it everything it does not handle (including every error).
func TestFastExtractAgreesWithJQ(t *testing.T) {
	srcs := map[string]string{
		"flat": `
  - name: s
    url: http://127.0.0.1:1/
    items: '.data[]'
    id: '.id'
    state: '.status'
`,
		"nested": `
  - name: s
    url: http://127.0.0.1:1/
    items: '.result.items[]'
    id: '.meta.id'
    state: '.meta.state.phase'
`,
		"root": `
  - name: s
    url: http://127.0.0.1:1/
    items: '.[]'
    id: '.id'
    state: '.status'
`,
	}
	bodies := []string{
		string(benchdata.Listing(50, 1, 3)),
		`{"data":[{"id":7,"status":true},{"id":-3,"status":null},{"id":"a","status":12},{"id":"b"}]}`,
		`{"data":[{"id":"x","status":{"b":1,"a":2}}]}`,
		`{"data":[{"id":"x","status":1.5}]}`,
		`{"data":[{"id":"é","status":"ok"}]}`,
		`{"data":[{"id":"x","status":"caf\u00e9 <b>"}]}`,
		`{"data":[{"id":"","status":"ok"}]}`,
		`{"data":[{"status":"ok"}]}`,
		`{"data":[1,2]}`,
		`{"data":null}`,
		`{"data":{"id":"x"}}`,
		`{"data":[{"id":"x","status":"ok"}`,
		`[{"id":"x","status":"ok","n":1e3},{"id":12345678901234567890,"status":"ok"}]`,
		`{"result":{"items":[{"meta":{"id":"m","state":{"phase":"done"}}},{"meta":{"id":"n"}}]}}`,
		`{"result":{"items":[{"meta":{"id":"m","state":"flat"}}]}}`,
		`{"result":{"items":[{"meta":"x"}]}}`,
		`{"data":[]}`,
		``,
		`<html>`,
	}
	ctx := context.Background()
	for name, yaml := range srcs {
		src := compiledSource(t, yaml)
		for _, body := range bodies {
			fast, ok := fastExtract(src, []byte(body))
			var slow []diff.Observation
			doc, err := decode([]byte(body), 200)
			if err == nil {
				slow, err = extract(ctx, src, doc)
			}
			if !ok {
				if name == "flat" && body == bodies[0] {
					t.Errorf("the common listing shape did not take the fast path")
				}
				continue // the general path decides
			}
			if err != nil {
				t.Errorf("%s %.60s: fast path answered where jq fails: %v", name, body, err)
				continue
			}
			if len(fast) != len(slow) {
				t.Errorf("%s %.60s: %d observations, jq %d", name, body, len(fast), len(slow))
				continue
			}
			for i := range fast {
				f, s := fast[i], slow[i]
				fo, so := objectOf(f), objectOf(s)
				if f.ID != s.ID || !bytes.Equal(f.State, s.State) || !bytes.Equal(fo, so) {
					t.Errorf("%s %.60s item %d:\n fast %s %s %s\n   jq %s %s %s", name, body, i, f.ID, f.State, fo, s.ID, s.State, so)
				}
			}
		}
	}
}

// objectOf resolves a deferred object as diff does.
func objectOf(o diff.Observation) json.RawMessage {
	switch {
	case o.Object != nil:
		return o.Object
	case o.ObjectFunc != nil:
		return o.ObjectFunc()
	default:
		return diff.CanonicalText(o.ObjectRaw)
	}
}

// The stand-in document nextDoc builds reads the same through the `next`
// path as the page decoded whole, or is refused where jq would fail.
func TestNextDocAgreesWithJQ(t *testing.T) {
	bodies := []string{
		`{"next":"c2","data":[]}`, `{"next":null}`, `{}`, `{"next":12345678901234567890}`,
		`{"next":{"a":[1,"x"]}}`, `{"links":{"next":"/p?x=1"}}`, `{"links":null}`, `{"links":{}}`,
		`{"links":[1]}`, `{"links":"s"}`, `[1,2]`, `{"links":{"next":"\u00e9\n"}}`,
	}
	for _, expr := range []string{".next", ".links.next"} {
		e := jqexpr.MustCompile(expr)
		for _, body := range bodies {
			full, err := jqexpr.Decode([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			want, wantErr := e.First(context.Background(), full)
			doc, ok := nextDoc([]byte(body), e.Path())
			if !ok {
				if wantErr == nil {
					t.Errorf("%s on %s: refused, but jq reads %v", expr, body, want)
				}
				continue
			}
			got, err := e.First(context.Background(), doc)
			if err != nil || wantErr != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s on %s: got %#v (%v), want %#v (%v)", expr, body, got, err, want, wantErr)
			}
		}
	}
}
