package poller

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/internal/benchdata"
	"github.com/pollrelay/pollrelay/jqexpr"
)

// agreeShape is a source and how to make a listing of it from items, with
// an item that always sends a page down the general path (an escaped
// string is not plain).
type agreeShape struct {
	src            *compiled
	prefix, suffix string
	slowItem       string
}

func agreeShapes(t testing.TB) map[string]agreeShape {
	src := func(items, id, state string) *compiled {
		cfg, err := config.ParseWith([]byte(fmt.Sprintf("storage: {in_memory: true}\nsources:\n  - {name: s, url: 'http://127.0.0.1:1/', items: '%s', id: '%s', state: '%s'}\n", items, id, state)),
			func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		c, err := compile(&cfg.Sources[0])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return map[string]agreeShape{
		"flat":   {src(".data[]", ".id", ".status"), `{"data":[`, `]}`, `{"id":"zz","status":"\u0078"}`},
		"nested": {src(".result.items[]", ".meta.id", ".meta.state.phase"), `{"result":{"items":[`, `]}}`, `{"meta":{"id":"zz","state":{"phase":"\u0078"}}}`},
		"root":   {src(".[]", ".id", ".status"), `[`, `]`, `{"id":"zz","status":"\u0078"}`},
		"shared": {src(".data[]", ".m.id", ".m.status"), `{"data":[`, `]}`, `{"m":{"id":"zz","status":"\u0078"}}`},
	}
}

// slowPath is the general path alone: encoding/json and jq.
func slowPath(src *compiled, body []byte) ([]diff.Observation, error) {
	doc, err := decode(body, 200)
	if err != nil {
		return nil, err
	}
	return extract(context.Background(), src, doc)
}

// requireAgree checks that where the fast path answers, the general path
// answers the same: same ids, states and canonical objects.
func requireAgree(t *testing.T, what string, src *compiled, body []byte) {
	t.Helper()
	fast, ok := fastExtract(src, body)
	if !ok {
		return // the general path decides alone
	}
	slow, err := slowPath(src, body)
	if err != nil {
		t.Fatalf("%s %q: the fast path answered where the general one fails: %v", what, body, err)
	}
	sameObservations(t, what, body, fast, slow)
}

func sameObservations(t *testing.T, what string, body []byte, a, b []diff.Observation) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s %q: %d observations against %d", what, body, len(a), len(b))
	}
	for i := range a {
		ao, bo := objectOf(a[i]), objectOf(b[i])
		if a[i].ID != b[i].ID || !bytes.Equal(a[i].State, b[i].State) || !bytes.Equal(ao, bo) {
			t.Fatalf("%s %q item %d:\n %q %s %s\n %q %s %s", what, body, i, a[i].ID, a[i].State, ao, b[i].ID, b[i].State, bo)
		}
	}
}

// requireNextAgree checks nextDoc against jq over the decoded page, on the
// bodies it is given (valid JSON, as the fast path has checked).
func requireNextAgree(t *testing.T, body []byte) {
	t.Helper()
	full, err := jqexpr.Decode(body)
	if err != nil {
		return
	}
	for _, expr := range []string{".next", ".links.next"} {
		e := jqexpr.MustCompile(expr)
		doc, ok := nextDoc(body, e.Path())
		if !ok {
			continue
		}
		want, wantErr := e.First(context.Background(), full)
		got, err := e.First(context.Background(), doc)
		if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s on %q: %#v (%v), decoded whole %#v (%v)", expr, body, got, err, want, wantErr)
		}
	}
}

// agreeSeeds are the classes where gjson and encoding/json can read the
// same bytes differently.
func agreeSeeds() []string {
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	return []string{
		string(benchdata.Listing(20, 1, 3)),
		// duplicate keys, at every level a path crosses
		`{"data":[{"id":"a","status":"queued","status":"ready"}]}`,
		`{"data":[{"id":"a","id":"b","status":"x"}]}`,
		`{"data":[{"id":"a","status":"x"}],"data":[{"id":"b","status":"y"}]}`,
		`{"result":{"items":[{"meta":{"id":"m","state":{"phase":"a","phase":"b"}}}]}}`,
		`{"result":{"items":[{"meta":{"id":"m","state":{"phase":"a"}},"meta":{"id":"n","state":{"phase":"b"}}}]}}`,
		`{"result":{"items":[{"meta":{"id":"m"}}]},"result":{"items":[]}}`,
		`{"data":[{"m":{"id":"a","status":"x"},"m":{"id":"a","status":"y"}}]}`,
		`{"next":"a","next":"b","links":{"next":"c"},"links":{"next":"d"}}`,
		// escaped and odd keys
		`{"data":[{"id":"a","status":"x","st\u0061tus":"y"}]}`,
		`{"data":[{"\u0069d":"a","status":"x"}]}`,
		`{"d\u0061ta":[{"id":"a","status":"x"}],"data":[]}`,
		`{"data":[{"id":"a","status":"x","status\u0000":"y"}]}`,
		"{\"data\":[{\"id\":\"a\",\"status\":\"x\",\"stat\xffus\":\"y\"}]}",
		"{\"data\":[{\"id\":\"a\",\"status\":\"x\",\"\xff\":1,\"\xef\xbf\xbd\":2}]}",
		`{"data":[{"id":"a","status":"x","stat\us":"y"}]}`,
		// values: invalid UTF-8, NUL, surrogate halves
		"{\"data\":[{\"id\":\"a\xff\",\"status\":\"x\"}]}",
		"{\"data\":[{\"id\":\"a\",\"status\":\"\xc3\"}]}",
		`{"data":[{"id":"a\u0000","status":"x\u0000"}]}`,
		`{"data":[{"id":"\ud800","status":"\udc00x"}]}`,
		`{"data":[{"id":"a","status":"\ud83d\ude00"}]}`,
		"{\"data\":[{\"id\":\"a\",\"status\":\"x\u2028\"}]}",
		// numbers
		`{"data":[{"id":1.0,"status":1}]}`,
		`{"data":[{"id":1e2,"status":-0}]}`,
		`{"data":[{"id":-0,"status":0}]}`,
		`{"data":[{"id":12345678901234567890123,"status":100000000000000000000}]}`,
		`{"data":[{"id":999999999999999999,"status":-999999999999999999}]}`,
		`{"data":[{"id":1,"status":1E400}]}`,
		`{"data":[{"id":01,"status":"x"}]}`,
		`{"data":[{"id":1,"status":"x","n":01}]}`,
		`{"data":[{"id":1,"status":"x","n":1.}]}`,
		`{"data":[{"id":1,"status":"x","n":-}]}`,
		// whitespace, BOM, trailing garbage, truncation, depth
		" \t\r\n{\"data\" :\n[ {\"id\" : \"a\" , \"status\":\"x\" } ] }\n",
		"\v{\"data\":[{\"id\":\"a\",\"status\":\"x\"}]}",
		"{\"data\":[{\"id\":\"a\",\"status\":\"x\"}]}\f",
		"{\"data\":[{\"id\":\"a\",\u00a0\"status\":\"x\"}]}",
		"\xef\xbb\xbf{\"data\":[{\"id\":\"a\",\"status\":\"x\"}]}",
		`{"data":[{"id":"a","status":"x"}]}}`,
		`{"data":[{"id":"a","status":"x"}]}]`,
		`{"data":[{"id":"a","status":"x"}]} x`,
		"{\"data\":[{\"id\":\"a\",\"status\":\"x\"}]}\x00",
		`{"data":[{"id":"a","status":"x"}`,
		`{"data":[{"id":"a","status":"x","deep":` + deep + `}]}`,
		`{"data":[{"id":"a","status":"x"}],"z":` + deep + `}`,
		// item fragments, for the listings the fuzz builds around them
		`{"id":"a","status":"queued","status":"ready"}`,
		`{"id":"a","status":"x"},{"id":"b","status":"y","status":"x"}`,
		`{"meta":{"id":"m","state":{"phase":"a","phase":"b"}}}`,
	}
}

// FuzzFastSlowAgree feeds the same bytes to the fast and the general
// path, alone and as the items of a listing with and without an item that
// sends the page down the general path: whatever the fast path extracts,
// the general path must extract identically, and an item must read the
// same whichever path its page took.
func FuzzFastSlowAgree(f *testing.F) {
	for _, s := range agreeSeeds() {
		f.Add([]byte(s))
	}
	shapes := agreeShapes(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		requireNextAgree(t, body)
		for name, sh := range shapes {
			requireAgree(t, name, sh.src, body)
			plain := []byte(sh.prefix + string(body) + sh.suffix)
			mixed := []byte(sh.prefix + string(body) + "," + sh.slowItem + sh.suffix)
			requireAgree(t, name+" listing", sh.src, plain)
			requireAgree(t, name+" mixed listing", sh.src, mixed)
			a, _, errA := parsePage(context.Background(), sh.src, nil, &response{status: 200, body: plain})
			b, _, errB := parsePage(context.Background(), sh.src, nil, &response{status: 200, body: mixed})
			if errA == nil && errB == nil && len(b) == len(a)+1 {
				sameObservations(t, name+" beside an escaped item", plain, a, b[:len(a)])
			}
		}
	})
}

// TestDuplicateKeyStableAcrossPaths: item a is byte-identical on every
// poll, with a duplicated status key; item b flips between a plain and an
// escaped spelling of the same string, which moves the page between the
// fast and the general path. Nothing changed, so nothing may fire (a
// first-occurrence read on one path and a last-occurrence read on the
// other fired a change of a on every poll).
func TestDuplicateKeyStableAcrossPaths(t *testing.T) {
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := `{"id":"b","status":"done"}`
		if n.Add(1)%2 == 0 {
			b = `{"id":"b","status":"d\u006fne"}`
		}
		fmt.Fprintf(w, `{"data":[{"id":"a","status":"queued","n":1,"status":"ready"},%s]}`, b)
	}))
	defer up.Close()
	h := newHarness(t, nil)
	h.start(sources(t, fmt.Sprintf("  - {name: s, url: '%s', items: '.data[]', id: '.id', state: '.status', interval: 1h}\n", up.URL)))
	for range 13 {
		h.mustPoll("s")
	}
	if evs := h.events(); len(evs) != 0 {
		t.Errorf("%d events fired for unchanged items: %v", len(evs), types(evs))
	}
	if it := h.item("s", "a"); it == nil || string(it.State) != `"ready"` {
		t.Errorf("item a = %+v, want state \"ready\" (the last occurrence, as jq reads it)", it)
	}
}

// TestDeepBodyRefused: a body nested deeper than encoding/json accepts is
// refused by both paths, without crashing (gjson's validator recursed once
// per level and ten million levels overflowed the stack, which no recover
// catches).
func TestDeepBodyRefused(t *testing.T) {
	const n = 10 << 20
	bodies := map[string][]byte{
		"arrays":  bytes.Repeat([]byte("["), n),
		"objects": bytes.Repeat([]byte(`{"a":`), n/5),
		"item":    []byte(`{"data":[{"id":"a","status":"x","d":` + strings.Repeat("[", n) + `}]}`),
	}
	for name, body := range bodies {
		for shape, sh := range agreeShapes(t) {
			if _, ok := fastExtract(sh.src, body); ok {
				t.Errorf("%s, %s: the fast path accepted it", name, shape)
			}
			if _, _, err := parsePage(context.Background(), sh.src, nil, &response{status: 200, body: body}); err == nil {
				t.Errorf("%s, %s: accepted", name, shape)
			}
		}
	}
}
