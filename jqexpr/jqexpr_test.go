package jqexpr

import (
	"context"
	"encoding/json"
	"math/big"
	"reflect"
	"testing"

	"github.com/itchyny/gojq"
)

func TestSimplePathMatchesGojq(t *testing.T) {
	docs := []string{
		`{"id": "a", "status": {"phase": "ready"}}`,
		`{"id": 12, "status": null}`,
		`{"other": 1}`,
		`null`,
		`{"status": {"phase": null}}`,
	}
	for _, src := range []string{".id", ".status", ".status.phase", ".missing.deeper"} {
		e := MustCompile(src)
		if e.path == nil {
			t.Fatalf("%s: expected the fast path", src)
		}
		for _, d := range docs {
			v, err := Decode([]byte(d))
			if err != nil {
				t.Fatal(err)
			}
			fast, ferr := e.First(context.Background(), v)
			slow, serr := viaGojq(src, v)
			if (ferr != nil) != (serr != nil) || !reflect.DeepEqual(fast, slow) {
				t.Errorf("%s over %s: fast path %v (%v), gojq %v (%v)", src, d, fast, ferr, slow, serr)
			}
		}
	}
}

func TestSimplePathErrorsLikeGojq(t *testing.T) {
	v, _ := Decode([]byte(`{"status": "ready"}`))
	e := MustCompile(".status.phase")
	if _, err := e.First(context.Background(), v); err == nil {
		t.Fatal("indexing a string must fail, as in jq")
	}
}

func TestNotSimple(t *testing.T) {
	for _, src := range []string{".", ".a[]", ".a | .b", `.["a"]`, ".a?", ".a.b // 1", ".1a"} {
		if e, err := Compile(src); err == nil && e.path != nil {
			t.Errorf("%q took the fast path", src)
		}
	}
}

func TestDecodeKeepsBigIntegers(t *testing.T) {
	v, err := Decode([]byte(`{"id": 1234567890123456789012, "n": 42, "f": 1.5}`))
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if b, ok := m["id"].(*big.Int); !ok || b.String() != "1234567890123456789012" {
		t.Errorf("id = %#v", m["id"])
	}
	if m["n"] != 42 || m["f"] != 1.5 {
		t.Errorf("n = %#v, f = %#v", m["n"], m["f"])
	}
}

func TestDecodeRejectsTrailingData(t *testing.T) {
	if _, err := Decode([]byte(`{"a":1} {"b":2}`)); err == nil {
		t.Error("two documents accepted")
	}
	if _, err := Decode([]byte(`{"a":`)); err == nil {
		t.Error("truncated JSON accepted")
	}
	// A stray closing bracket is not the end of an enclosing value.
	for _, d := range []string{`{"a":1}}`, `[1]]`, `{"a":1}]`, "1 }", "{\"a\":1}\x00", "{}\v"} {
		if _, err := Decode([]byte(d)); err == nil {
			t.Errorf("%q accepted", d)
		}
	}
	for _, d := range []string{"{\"a\":1} \t\r\n", " [1]"} {
		if _, err := Decode([]byte(d)); err != nil {
			t.Errorf("%q: %v", d, err)
		}
	}
}

func TestCompileErrorNamesExpression(t *testing.T) {
	_, err := Compile(".status |")
	if err == nil || err.Error()[:len(`jq ".status |"`)] != `jq ".status |"` {
		t.Errorf("error %v does not start with the expression", err)
	}
}

func viaGojq(src string, v any) (any, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, err
	}
	it := q.Run(v)
	r, ok := it.Next()
	if !ok {
		return nil, nil
	}
	if err, ok := r.(error); ok {
		return nil, err
	}
	return r, nil
}

// FuzzExtract runs the expressions a source typically uses over arbitrary
// upstream bytes: decoding and extraction may fail, never panic, and the
// fast path for plain field paths must agree with gojq.
func FuzzExtract(f *testing.F) {
	f.Add([]byte(`{"data": [{"id": "a", "status": "ready"}]}`))
	f.Add([]byte(`{"data": [{"id": 1, "status": {"x": [1, 2]}}], "next": "c2"}`))
	f.Add([]byte(`[1, "two", null, {"id": null}]`))
	f.Add([]byte(`{"id": 99999999999999999999999, "status": 1e400}`))
	f.Add([]byte("<html>502 Bad Gateway</html>"))
	items := MustCompile(".data[]")
	exprs := []*Expr{MustCompile(".id"), MustCompile(".status"), MustCompile(".status.phase"), MustCompile("del(.embedding)")}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data)
		if err != nil {
			return
		}
		if _, err := json.Marshal(v); err != nil {
			// Every decoded value must re-encode: states are stored as JSON.
			t.Fatalf("decoded value does not re-encode: %v", err)
		}
		all, _ := items.All(ctx, v)
		for _, it := range append(all, v) {
			for _, e := range exprs {
				got, gerr := e.First(ctx, it)
				if e.path != nil {
					want, werr := viaGojq(e.src, it)
					if (gerr != nil) != (werr != nil) || (gerr == nil && !reflect.DeepEqual(got, want)) {
						t.Fatalf("%s: fast path %v (%v) but gojq %v (%v)", e.src, got, gerr, want, werr)
					}
				}
			}
		}
	})
}
