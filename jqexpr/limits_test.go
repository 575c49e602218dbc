package jqexpr

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/itchyny/gojq"
)

// dag is a value of 2^40 leaves in 40 arrays: tiny in memory, a terabyte
// once encoded or compared.
const dag = `(reduce range(40) as $i ([0]; [., .]))`

// wide shares one array of 100,000 numbers 100,000 times.
const wide = `([range(1e5)] as $a | [range(1e5) | $a])`

// bombs are expressions built to exhaust memory or a core, one of each
// kind: each must fail with a limit error instead.
var bombs = map[string]string{
	"recursion builds arrays":      `def f: [f]; f`,
	"recursion forever":            `def f: f; f`,
	"recursion doubling":           `def f: f + f; f`,
	"range collected":              `[range(1e9)]`,
	"repeat collected":             `[limit(1e8; repeat(1))]`,
	"reduce grows an array":        `reduce range(1e9) as $i ([]; . + [$i])`,
	"string doubling":              `reduce range(40) as $i ("x"; . + .)`,
	"string repeat":                `"x" * 1e9`,
	"string repeat at gojq's cap":  `" " * 2147483000`,
	"until false":                  `until(false; .)`,
	"last of a long range":         `last(range(1e12))`,
	"tostring of shared arrays":    wide + ` | tostring`,
	"tojson of a dag":              dag + ` | tojson`,
	"interpolation of a dag":       `"\(` + dag + `)"`,
	"format of a dag":              `@base64 "\(` + dag + `)"`,
	"comparison of a dag":          dag + ` as $d | $d == $d`,
	"sort of a dag":                dag + ` as $d | [$d, $d] | sort`,
	"add of shared arrays":         wide + ` | add`,
	"flatten of a dag":             dag + ` | flatten`,
	"join of shared arrays":        `[range(1e5) | "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"] | join("y" * 1000)`,
	"transpose of shared arrays":   `[range(1e4)] as $a | [$a, (range(1e4) | [])] | transpose`,
	"split into characters":        `"x" * 1e7 | split("")`,
	"division into characters":     `"x" * 6e7 / ""`,
	"explode":                      `"x" * 1e7 | explode`,
	"global match":                 `"x" * 1e6 | [match("x"; "g")]`,
	"gsub":                         `"x" * 1e6 | gsub("x"; "yy")`,
	"contains of long arrays":      `[range(1e5)] | contains([range(1e5) | -1])`,
	"array subtraction":            `[range(1e5)] - [range(1e5) | -1]`,
	"assignment far past the end":  `.[5e8] = 1`,
	"update far past the end":      `1 as $n | .[$n + 5e8] |= 1`,
	"setpath far past the end":     `setpath([5e8]; 1)`,
	"pick far past the end":        `pick(.[5e8])`,
	"deep nesting encoded":         `reduce range(1e6) as $i (0; [.]) | tojson`,
	"deep nesting yielded":         `reduce range(1e5) as $i (0; [.])`,
	"big integer squaring":         `reduce range(30) as $i (3; . * .)`,
	"tonumber of a long string":    `"1" * 1e6 | tonumber`,
	"fromjson of a long array":     `"[" + ("1," * 1e7) + "1]" | fromjson`,
	"yielded value over the bound": `"x" * 6e7 | [., .]`,
}

func TestBombsFailWithALimit(t *testing.T) {
	for name, src := range bombs {
		t.Run(name, func(t *testing.T) {
			e, err := Compile(src)
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.All(context.Background(), nil)
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("%s: got %v, want a limit error", src, err)
			}
			if !strings.Contains(err.Error(), "jq ") || len(err.Error()) > 2*maxErrorText {
				t.Errorf("error %q does not name the expression or is unbounded", err)
			}
		})
	}
}

// TestBombsKeepTheHeapBounded runs the bombs that build step by step and
// checks the heap never went far past the bound: what is measured is the
// largest heap seen by a sampler, which is a safety figure, not a timing.
func TestBombsKeepTheHeapBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates up to the heap bound several times")
	}
	for _, src := range []string{`def f: [f]; f`, `[range(1e9)]`, `reduce range(40) as $i ("x"; . + .)`, `def f: f + f; f`, wide + ` | tostring`} {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		stop := make(chan struct{})
		peak := make(chan uint64)
		go func() {
			var top uint64
			tk := time.NewTicker(time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					peak <- top
					return
				case <-tk.C:
					var m runtime.MemStats
					runtime.ReadMemStats(&m)
					top = max(top, m.HeapAlloc)
				}
			}
		}()
		_, err := MustCompile(src).All(context.Background(), nil)
		close(stop)
		top := <-peak
		if !errors.Is(err, ErrLimit) {
			t.Fatalf("%s: %v", src, err)
		}
		if grew := int64(top) - int64(base.HeapAlloc); grew > 3*int64(DefaultLimits.MaxHeapGrowth) {
			t.Errorf("%s: heap grew by %d MiB, bound %d MiB", src, grew>>20, DefaultLimits.MaxHeapGrowth>>20)
		}
	}
}

func TestCallerCancellationIsNotALimit(t *testing.T) {
	e, err := CompileWithLimits(`def f: f; f`, Limits{Timeout: time.Hour, MaxValueBytes: 1 << 20, MaxDepth: 100, MaxHeapGrowth: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := e.First(ctx, nil); errc <- err }()
	for Running() == 0 {
		runtime.Gosched()
	}
	cancel()
	err = <-errc
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrLimit) {
		t.Fatalf("got %v, want the caller's cancellation", err)
	}
}

func TestErrorOfAHugeValueIsBounded(t *testing.T) {
	for _, src := range []string{`error(` + dag + `)`, `error("x" * 1e7)`, `halt_error(` + dag + `)`} {
		_, err := MustCompile(src).All(context.Background(), nil)
		if err == nil || len(err.Error()) > 2*maxErrorText {
			t.Errorf("%s: error of %d bytes", src, len(err.Error()))
		}
	}
}

// TestChecksKeepJqSemantics runs ordinary expressions through the checked
// form and through plain gojq: every checked builtin and operator must give
// the same values, in the same order, or fail alike.
func TestChecksKeepJqSemantics(t *testing.T) {
	input := `{"a": 3, "s": "a, b, a", "n": [3, 1, 2], "o": [{"x": 2, "id": "b"}, {"x": 1, "id": "a"}, {"x": 2, "id": "c"}],
		"m": {"k": {"v": 1}}, "t": [[1, 2], [3]], "j": "{\"z\": [1]}", "num": "42"}`
	exprs := []string{
		`.a * 2`, `.a + 1`, `"a" + "b"`, `[1] + [2]`, `{a: 1} + {b: 2}`, `null + 1`, `9223372036854775807 + 1`, `1 + 1.5`, `{a: 1} + {a: 2}`, `"a" + null`, `1 + "a"`, `[] + null`, `[(1,2) + (10,20)]`, `.n += [4]`, `"ab" * 3`, `"ab" * 0`, `"ab" * -1`, `.m * {"k": {"w": 2}}`, `[(1,2) * (3,4)]`, `[(1,2) == (1,3)]`,
		`[1,2,3,2] - [2]`, `.s / ", "`, `.a - 1`, `.a / 2`, `1 / 0`, `[.a < 4, .a <= 3, .a > 3, .a >= 4, .a != 3]`,
		`.n[5] = 1`, `.a |= . + 1`, `.a += 1`, `.a -= 1`, `.a *= 2`, `.a /= 2`, `.a //= 9`, `.n[] |= empty`, `.n[1:] = ["x"]`,
		`to_entries`, `tostring`, `.n | tostring`, `"\(.a) x \(.n)"`, `@base64 "x\(.s)"`, `@json "v=\(.n)"`, `.n | @csv`, `.s | @sh`,
		`.o | sort_by(.x)`, `.o | group_by(.x)`, `.o | unique_by(.x)`, `.o | min_by(.x)`, `.o | max_by(.id)`, `.n | sort`, `.n | unique`,
		`[.o[] | select(.x > 1)]`, `del(.a)`, `del(.o[] | select(.x == 2))`, `pick(.m.k)`, `.s | [match("a"; "g")]`, `.s | sub("a"; "b")`,
		`.s | gsub("(?<x>a)"; "\(.x)!")`, `.s | [scan("a")]`, `.s | [splits(", ")]`, `.s | split(", "; null)`, `.s | split(", ")`,
		`.s | capture("(?<l>[a-z])")`, `.s | test("b")`, `.j | fromjson`, `tojson`, `.o | INDEX(.id)`, `.a | IN(1, 3)`,
		`.s | contains("b")`, `.n | inside([1, 2, 3, 4])`, `.s | indices(", ")`, `.s | index("a")`, `.s | rindex("a")`,
		`.n | join("-")`, `.t | flatten`, `.t | flatten(1)`, `.t | add`, `add(.n[])`, `[65, 66] | implode`, `.s | explode`,
		`.t | transpose`, `[paths]`, `[tostream]`, `fromstream(tostream)`, `.n | map_values(. + 1)`, `.m | with_entries(.key += "!")`,
		`[limit(3; repeat(1))]`, `.. |= (if type == "number" then . + 1 else . end)`, `setpath(["m", "k", "v"]; 2)`,
		`delpaths([["a"], ["n", 0]])`, `getpath(["m", "k"])`, `.n | sort | bsearch(2)`, `{} | .a.b = 1`, `.num | tonumber`,
		`.n | min, max`, `.s | ascii_upcase`, `[.[] | numbers]`, `[.n[] | values]`, `.s | ltrimstr("a")`, `. as $x | $x.a * $x.a`,
		`def f: . * 2; [.n[] | f]`, `def tostring: "mine"; .a | tostring`, `.a as $v | reduce range(3) as $i (.; .n[$i] = $v)`,
	}
	v, err := Decode([]byte(input))
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range exprs {
		got, gerr := MustCompile(src).All(context.Background(), v)
		q, err := gojq.Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		var want []any
		var werr error
		it := q.Run(v)
		for {
			r, ok := it.Next()
			if !ok {
				break
			}
			if e, ok := r.(error); ok {
				werr = e
				break
			}
			want = append(want, r)
		}
		if (gerr != nil) != (werr != nil) || (gerr == nil && !reflect.DeepEqual(got, want)) {
			t.Errorf("%s: checked %v (%v), gojq %v (%v)", src, got, gerr, want, werr)
		}
	}
}

func TestPreludeCompilesOnlyWhatIsUsed(t *testing.T) {
	q, err := gojq.Parse(`.a | tostring`)
	if err != nil {
		t.Fatal(err)
	}
	if q, err = withPrelude(q); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fd := range q.FuncDefs {
		names = append(names, fd.Name)
	}
	if !reflect.DeepEqual(names, []string{"_pollrelay_b_tostring", "tostring"}) {
		t.Errorf("definitions %v", names)
	}
}

// TestHeapBoundStopsGradualGrowth: recursion that builds a little at each
// step has no single call to refuse; the watchdog stops it by the heap.
func TestHeapBoundStopsGradualGrowth(t *testing.T) {
	l := DefaultLimits
	l.Timeout = time.Hour
	e, err := CompileWithLimits(`def f: [f]; f`, l)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.First(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "allocate") {
		t.Fatalf("got %v, want the heap bound", err)
	}
}

// TestLongSourceIsRefused: compiling recurses on the goroutine stack, so
// a deeply nested expression must be refused before it is parsed.
func TestLongSourceIsRefused(t *testing.T) {
	n := 1 << 20
	for _, src := range []string{strings.Repeat("[", n) + strings.Repeat("]", n), strings.Repeat(".|", n) + "."} {
		if _, err := Compile(src); err == nil || !strings.Contains(err.Error(), "at most 8 KiB") {
			t.Errorf("a %d-byte expression: %v", len(src), err)
		}
	}
	if _, err := Compile(strings.Repeat("[", 1000) + strings.Repeat("]", 1000)); err != nil {
		t.Errorf("a nested expression under the bound: %v", err)
	}
}

// FuzzLimitedEvaluation runs arbitrary expressions over a small document
// under tight limits: each must end (with values or an error) and never
// take the process down, whatever it asks gojq to build.
func FuzzLimitedEvaluation(f *testing.F) {
	for _, src := range bombs {
		f.Add(src)
	}
	f.Add(`.data[] | {id, s: (.status | ascii_downcase)}`)
	f.Add(`[paths] | tojson | explode | implode`)
	l := Limits{Timeout: 200 * time.Millisecond, MaxValueBytes: 1 << 20, MaxDepth: 1000, MaxHeapGrowth: 32 << 20}
	doc, _ := Decode([]byte(`{"data": [{"id": "a", "status": "READY", "n": [1, 2, 3]}], "next": null}`))
	f.Fuzz(func(t *testing.T, src string) {
		e, err := CompileWithLimits(src, l)
		if err != nil {
			return
		}
		out, err := e.All(context.Background(), doc)
		// The message quotes the expression, which %q may make four
		// times longer (invalid UTF-8); the rest of it is bounded.
		if err != nil && len(err.Error()) > 2*maxErrorText+len(strconv.Quote(src))+64 {
			t.Fatalf("error of %d bytes", len(err.Error()))
		}
		for _, v := range out {
			if err := l.check("out", v); err != nil {
				t.Fatalf("yielded a value over the limits: %v", err)
			}
		}
	})
}

// TestDecodeRefusesHugeNumbers: an upstream body with a number of millions
// of digits would take minutes to convert; it is refused at once.
func TestDecodeRefusesHugeNumbers(t *testing.T) {
	_, err := Decode([]byte(`{"id": ` + strings.Repeat("7", 5_000_000) + `}`))
	if err == nil || !strings.Contains(err.Error(), "digits") {
		t.Fatalf("got %v, want a refusal of the number", err)
	}
	v, err := Decode([]byte(`{"id": ` + strings.Repeat("7", 100) + `}`))
	if err != nil || v.(map[string]any)["id"] == nil {
		t.Fatalf("a 100-digit id: %v, %v", v, err)
	}
}

// TestInternalFunctionsAreRefused: gojq's internal functions and the
// prelude's names lead to the builtins behind the checks.
func TestInternalFunctionsAreRefused(t *testing.T) {
	for _, src := range []string{dag + ` | _pollrelay_b_tojson`, dag + ` as $d | _equal($d; $d)`,
		`[0] | _sort_by([` + dag + `])`, `"x" | _match("x"; "g"; false)`, `_modify(.a; 1)`} {
		if _, err := Compile(src); err == nil || !strings.Contains(err.Error(), "internal") {
			t.Errorf("%s: %v", src, err)
		}
	}
	if _, err := Compile(`def _twice: . * 2; 3 | _twice`); err != nil {
		t.Errorf("a function of the expression's own: %v", err)
	}
}

// TestConcurrentBombsShareTheHeapBound: evaluations running at once are
// measured against the same process heap, so eight bombs together stay
// near the bound instead of eight times it.
func TestConcurrentBombsShareTheHeapBound(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates up to the heap bound")
	}
	l := DefaultLimits
	l.Timeout = time.Hour
	e, err := CompileWithLimits(`def f: [f]; f`, l)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	errs := make(chan error, 8)
	for range 8 {
		go func() { _, err := e.First(context.Background(), nil); errs <- err }()
	}
	var top uint64
	for done := 0; done < 8; {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrLimit) {
				t.Errorf("got %v, want a limit error", err)
			}
			done++
		default:
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			top = max(top, m.HeapAlloc)
			time.Sleep(time.Millisecond)
		}
	}
	if grew := int64(top) - int64(base.HeapAlloc); grew > 3*int64(l.MaxHeapGrowth) {
		t.Errorf("heap grew by %d MiB with eight bombs, bound %d MiB", grew>>20, l.MaxHeapGrowth>>20)
	} else {
		t.Logf("heap grew by %d MiB at most", grew>>20)
	}
}
