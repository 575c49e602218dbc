package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pollrelay/pollrelay/internal/jsgen"
)

func TestJSCompactCases(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"10":1,"2":2,"b":3,"a":4,"0":5}`, `{"0":5,"2":2,"10":1,"b":3,"a":4}`},
		{`{"01":1,"1":2,"-1":3,"4294967295":4,"4294967294":5}`, `{"1":2,"4294967294":5,"01":1,"-1":3,"4294967295":4}`},
		{`{"a":1,"b":2,"a":3}`, `{"a":3,"b":2}`},
		{`{"a":1,"\u0061":2}`, `{"a":2}`},
		{`"\u2028\u2029<>&\u003c"`, "\"\u2028\u2029<>&<\""},
		{`"\u0000\u001f\b\f\n\r\t\/\"\\"`, `"\u0000\u001f\b\f\n\r\t/\"\\"`},
		{`"\ud83d\ude00 \ud800 \udc00x \ud800\u0041"`, `"😀 \ud800 \udc00x \ud800A"`},
		{"\"\xff\xfe ok\"", "\"\ufffd\ufffd ok\""},
		{`[1.0, -0, 0.0, 1e2, 1E-7, 0.000001, 1e21, 1e20, 123456789012345678, 1.5e300, 5e-324, 1e400, -1e400]`,
			`[1,0,0,100,1e-7,0.000001,1e+21,100000000000000000000,123456789012345678,1.5e+300,5e-324,null,null]`},
		{`[9007199254740993, -9007199254740993, 9007199254740992]`, `[9007199254740993,-9007199254740993,9007199254740992]`},
		{" { \"a\" : [ true , false , null ] } ", `{"a":[true,false,null]}`},
		{`0.1`, `0.1`}, {`-0.5`, `-0.5`}, {`123e-20`, `1.23e-18`}, {`1.7976931348623157e308`, `1.7976931348623157e+308`},
	} {
		got, err := JSCompact([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func TestJSCompactRefusesBadJSON(t *testing.T) {
	for _, in := range []string{``, `{`, `[1,]`, `{"a" 1}`, `"abc`, "\"a\x01\"", `"\x"`, `"\u12"`, `nul`, `1 2`, `{"a":1}x`, strings.Repeat("[", maxJSDepth+2)} {
		if out, err := JSCompact([]byte(in)); err == nil {
			t.Errorf("%q: no error, got %s", in, out)
		}
	}
}

// TestJSCompactMatchesNode feeds generated documents to the real node and
// checks JSCompact writes exactly what JSON.stringify(JSON.parse(doc))
// does, and that its output reads back to itself there.
func TestJSCompactMatchesNode(t *testing.T) {
	jsgen.NeedNode(t)
	docs := jsgen.Docs(1, 3000)
	ours := make([][]byte, len(docs))
	for i, d := range docs {
		out, err := JSCompact(d)
		if err != nil {
			t.Fatalf("JSCompact(%s): %v", d, err)
		}
		ours[i] = out
	}
	fromNode := jsgen.Stringify(t, append(append([][]byte{}, docs...), ours...))
	for i := range docs {
		if !bytes.Equal(ours[i], fromNode[i]) {
			t.Errorf("doc %s\n  ours %s\n  node %s", docs[i], ours[i], fromNode[i])
		}
		if again := fromNode[len(docs)+i]; !bytes.Equal(ours[i], again) {
			t.Errorf("JSON.stringify(JSON.parse(%s)) = %s", ours[i], again)
		}
	}
}

// BenchmarkJSCompact measures the rewrite of a ~1 KiB envelope, the cost
// it adds to every delivery.
func BenchmarkJSCompact(b *testing.B) {
	obj := `{"id":"v_123","status":"ready","title":"A video about <things> & more","duration":123.5,"tags":["a","b","c"],"meta":{"w":1920,"h":1080,"codec":"h264","bitrate":4500000},"description":"` + strings.Repeat("lorem ipsum ", 60) + `"}`
	doc := []byte(`{"type":"video.status.ready","timestamp":"2026-01-15T10:30:00.123Z","data":{"source":"videos","id":"v_123","previous":"processing","current":"ready","object":` + obj + `}}`)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := JSCompact(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// A large object finds a repeated key as a small one does.
func TestJSCompactLargeObjectRepeats(t *testing.T) {
	var in, want strings.Builder
	in.WriteString("{")
	want.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&in, `"k%d":%d,`, i, i)
		if i > 0 {
			want.WriteString(",")
		}
		v := i
		if i == 3 {
			v = 99
		}
		fmt.Fprintf(&want, `"k%d":%d`, i, v)
	}
	in.WriteString(`"k3":99}`)
	want.WriteString("}")
	got, err := JSCompact([]byte(in.String()))
	if err != nil || string(got) != want.String() {
		t.Errorf("got %s, %v\nwant %s", got, err, want.String())
	}
}

// FuzzJSCompact: every document Go accepts is rewritten into valid JSON
// that means the same to Go and that a second rewrite leaves alone.
func FuzzJSCompact(f *testing.F) {
	for _, d := range jsgen.Docs(3, 40) {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !json.Valid(doc) {
			return
		}
		out, err := JSCompact(doc)
		if err != nil {
			t.Fatalf("JSCompact(%q): %v", doc, err)
		}
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("JSCompact(%q) = %q: not valid JSON in UTF-8", doc, out)
		}
		again, err := JSCompact(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q → %q → %q (%v)", doc, out, again, err)
		}
		var a, b any
		if json.Unmarshal(doc, &a) == nil && json.Unmarshal(out, &b) == nil && !reflect.DeepEqual(a, b) {
			t.Fatalf("meaning changed: %q → %q", doc, out)
		}
	})
}
