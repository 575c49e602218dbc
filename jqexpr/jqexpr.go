// Package jqexpr wraps gojq: expressions are compiled once, when what uses them
// starts, and run many times over decoded upstream JSON.
package jqexpr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/itchyny/gojq"
)

// Expr is a compiled jq expression. It is safe for concurrent use.
type Expr struct {
	src    string
	code   *gojq.Code
	limits Limits
	// path is set when src is a plain field path such as `.a.b` or `.id`,
	// which is evaluated without the jq interpreter: it is the common case for
	// id and state and runs once per item per poll. Following a path builds
	// nothing, so it needs no limits.
	path []string
}

// Compile parses and compiles src under DefaultLimits. The error names the
// expression.
func Compile(src string) (*Expr, error) { return CompileWithLimits(src, DefaultLimits) }

// MaxSourceBytes bounds an expression's text. gojq compiles recursively,
// in time that grows faster than the text: 8 KiB of `1+1+…` takes most of a
// second, and a megabyte of `[[[…` overflows the goroutine stack, which
// ends the process. The longest vendor payloads are a few hundred bytes.
const MaxSourceBytes = 8 << 10

// CompileWithLimits is Compile with other limits.
func CompileWithLimits(src string, l Limits) (*Expr, error) {
	if len(src) > MaxSourceBytes {
		return nil, fmt.Errorf("jq expression of %d bytes: at most %s", len(src), bytesText(MaxSourceBytes))
	}
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("jq %q: %w", src, err)
	}
	if q, err = withPrelude(q); err != nil {
		return nil, fmt.Errorf("jq %q: %w", src, err)
	}
	code, err := gojq.Compile(q, l.options()...)
	if err != nil {
		return nil, fmt.Errorf("jq %q: %w", src, err)
	}
	return &Expr{src: src, code: code, limits: l, path: simplePath(src)}, nil
}

// MustCompile is Compile for expressions known at build time.
func MustCompile(src string) *Expr {
	e, err := Compile(src)
	if err != nil {
		panic(err)
	}
	return e
}

// String returns the source text.
func (e *Expr) String() string { return e.src }

// Limits returns the limits the expression runs under.
func (e *Expr) Limits() Limits { return e.limits }

// IsIdentity reports whether the expression is `.`.
func (e *Expr) IsIdentity() bool { return strings.TrimSpace(e.src) == "." }

// All runs the expression and returns every value it yields.
func (e *Expr) All(ctx context.Context, v any) ([]any, error) {
	if e.path != nil {
		r, ok := lookup(v, e.path)
		if !ok {
			return nil, fmt.Errorf("jq %q: cannot index %s", e.src, typeName(v))
		}
		return []any{r}, nil
	}
	var out []any
	err := e.run(ctx, v, func(r any) bool {
		out = append(out, r)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// First runs the expression and returns its first value, or nil when it
// yields nothing.
func (e *Expr) First(ctx context.Context, v any) (any, error) {
	if e.path != nil {
		r, ok := lookup(v, e.path)
		if !ok {
			return nil, fmt.Errorf("jq %q: cannot index %s", e.src, typeName(v))
		}
		return r, nil
	}
	var first any
	err := e.run(ctx, v, func(r any) bool {
		first = r
		return false
	})
	return first, err
}

// run evaluates the expression under its limits, handing each value to
// yield until yield returns false. An evaluation stopped by a limit fails
// with a *LimitError; one stopped because ctx ended fails with ctx's error,
// so a caller can tell its own cancellation (shutdown) from a runaway
// expression.
func (e *Expr) run(ctx context.Context, v any, yield func(any) bool) (err error) {
	ctx, done := dog.start(ctx, e.limits, e.src)
	defer done()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("jq %q: evaluation failed: %v", e.src, p)
		}
	}()
	iter := e.code.RunWithContext(ctx, v)
	for {
		r, ok := iter.Next()
		if !ok {
			return nil
		}
		if rerr, isErr := r.(error); isErr {
			if cerr := context.Cause(ctx); cerr != nil {
				var le *LimitError
				if errors.As(cerr, &le) {
					return fmt.Errorf("jq %q: %w", e.src, le)
				}
				return fmt.Errorf("jq %q: %w", e.src, cerr)
			}
			var halt *gojq.HaltError
			if errors.As(rerr, &halt) && halt.Value() == nil {
				return nil
			}
			return fmt.Errorf("jq %q: %w", e.src, quoted(rerr))
		}
		if err := e.limits.check("a value it yields", r); err != nil {
			return fmt.Errorf("jq %q: %w", e.src, err)
		}
		if !yield(r) {
			return nil
		}
	}
}

// maxErrorText bounds the text of an error an expression raises, which
// ends up in logs and attempt records.
const maxErrorText = 1 << 10

// quoted gives a bounded message for an expression's error: gojq encodes
// the whole value of error(v) in its message, which for a value built to
// be huge is itself a bomb.
func quoted(err error) error {
	var le *LimitError
	if errors.As(err, &le) {
		return err
	}
	var msg string
	if ve, ok := err.(interface{ Value() any }); ok {
		if s, isStr := ve.Value().(string); isStr {
			msg = "error: " + s
		} else {
			msg = "error: " + gojq.Preview(ve.Value())
		}
	} else {
		msg = err.Error()
	}
	if len(msg) > maxErrorText {
		msg = strings.ToValidUTF8(msg[:maxErrorText], "") + " …"
	}
	return errors.New(msg)
}

// Truthy reports whether the first value is neither false nor null.
func (e *Expr) Truthy(ctx context.Context, v any) (bool, error) {
	r, err := e.First(ctx, v)
	if err != nil {
		return false, err
	}
	return r != nil && r != false, nil
}

// simplePath recognises `.a.b.c` with identifier keys; anything else (and
// `.` itself) goes through gojq.
func simplePath(src string) []string {
	s := strings.TrimSpace(src)
	if len(s) < 2 || s[0] != '.' {
		return nil
	}
	parts := strings.Split(s[1:], ".")
	for _, p := range parts {
		if p == "" {
			return nil
		}
		for i, c := range p {
			ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
			if !ok {
				return nil
			}
		}
	}
	return parts
}

// lookup follows path like jq: a missing key or null yields null; indexing
// anything but an object or null is an error.
func lookup(v any, path []string) (any, bool) {
	for _, k := range path {
		switch m := v.(type) {
		case nil:
			return nil, true
		case map[string]any:
			v = m[k]
		default:
			return nil, false
		}
	}
	return v, true
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return "number"
	}
}

// Decode parses JSON into the value types gojq accepts. Numbers keep their
// precision: integers become int (or *big.Int), others float64, so an id like
// 1234567890123456789 survives. A number of more than maxNumberDigits
// characters is refused: converting decimal digits to a big integer takes
// time quadratic in their count (five million took minutes), and no id or
// state needs a thousandth of that.
func Decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	// Anything but whitespace after the value is an error: Decoder.More
	// alone takes a stray `]` or `}` for the end of an enclosing value.
	if rest := bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, errors.New("unexpected data after the top-level JSON value")
	}
	var long int
	v = normalize(v, &long)
	if long > 0 {
		return nil, fmt.Errorf("a number of %d digits (at most %d)", long, maxNumberDigits)
	}
	return v, nil
}

// Normalize converts json.Number values (from a decoder with UseNumber) in
// place into int, *big.Int or float64.
func Normalize(v any) any {
	var long int
	return normalize(v, &long)
}

// normalize is Normalize, setting *long to the length of a number too long
// to convert exactly (which becomes a float64).
func normalize(v any, long *int) any {
	switch x := v.(type) {
	case json.Number:
		if len(x) > maxNumberDigits {
			*long = len(x)
			f, _ := x.Float64()
			return f
		}
		return number(x)
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e, long)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalize(e, long)
		}
		return x
	default:
		return v
	}
}

func number(n json.Number) any {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := n.Int64(); err == nil && i >= math.MinInt && i <= math.MaxInt {
			return int(i)
		}
		if b, ok := new(big.Int).SetString(s, 10); ok {
			return b
		}
	}
	f, err := n.Float64()
	if err != nil {
		return s
	}
	return f
}

// Path returns the keys of a plain field path such as `.a.b`, or nil when
// the expression is anything else. Callers with a faster way to follow a
// path (over raw JSON, say) use it; the result must not be modified.
func (e *Expr) Path() []string { return e.path }

// IterPath reports whether the expression is a field path followed by `[]`,
// like `.data[]` or `.[]`, and returns its keys (empty for `.[]`). It is
// the usual items expression of a list source.
func (e *Expr) IterPath() ([]string, bool) {
	s := strings.TrimSpace(e.src)
	base, ok := strings.CutSuffix(s, "[]")
	if !ok {
		return nil, false
	}
	if base == "." {
		return []string{}, true
	}
	if p := simplePath(base); p != nil {
		return p, true
	}
	return nil, false
}
