package jqexpr

import (
	"maps"
	"math/big"
	"strings"
	"sync"

	"github.com/itchyny/gojq"
)

// maxPairOps bounds builtins whose work is the product of two sizes
// (contains, indices, array subtraction): about a second of comparisons.
const maxPairOps = 1 << 27

// maxNumberDigits bounds the strings tonumber parses and the integers that
// multiplication builds: decimal conversion of big integers is quadratic.
const maxNumberDigits = 1 << 16

// options registers the checks the prelude and the rewritten operators
// call, bound to l.
func (l Limits) options() []gojq.CompilerOption {
	value := func(v any, _ []any) any {
		if err := l.check("the input", v); err != nil {
			return err
		}
		return v
	}
	return []gojq.CompilerOption{
		gojq.WithFunction("_pollrelay_value", 0, 0, value),
		gojq.WithFunction("_pollrelay_arg", 1, 1, func(v any, a []any) any {
			if err := l.check("the argument", a[0]); err != nil {
				return err
			}
			return v
		}),
		gojq.WithFunction("_pollrelay_scaled", 1, 1, func(v any, a []any) any {
			n, _ := a[0].(int)
			return l.scaled(v, max(n, 1))
		}),
		gojq.WithFunction("_pollrelay_number", 0, 0, func(v any, _ []any) any {
			if s, ok := v.(string); ok && len(s) > maxNumberDigits {
				return limitErr("tonumber of a string of %d bytes (the limit is %d)", len(s), maxNumberDigits)
			}
			return v
		}),
		gojq.WithFunction("_pollrelay_pair", 1, 1, func(v any, a []any) any { return l.pair(v, a[0]) }),
		gojq.WithFunction("_pollrelay_join", 1, 1, func(v any, a []any) any { return l.join(v, a[0]) }),
		gojq.WithFunction("_pollrelay_split", 1, 1, func(v any, a []any) any { return l.split(v, a[0]) }),
		gojq.WithFunction("_pollrelay_match", 1, 1, func(v any, a []any) any { return l.match(v, a[0]) }),
		gojq.WithFunction("_pollrelay_transpose", 0, 0, func(v any, _ []any) any { return l.transpose(v) }),
		gojq.WithFunction("_pollrelay_path", 1, 1, func(v any, a []any) any { return l.path(v, a[0]) }),
		gojq.WithFunction("_pollrelay_paths", 1, 1, func(v any, a []any) any {
			ps, _ := a[0].([]any)
			for _, p := range ps {
				if err, ok := l.path(v, p).(error); ok {
					return err
				}
			}
			return v
		}),
		gojq.WithFunction("_pollrelay_add", 2, 2, func(_ any, a []any) any { return l.add(a[0], a[1]) }),
		gojq.WithFunction("_pollrelay_mul", 2, 2, func(_ any, a []any) any { return l.mul(a[0], a[1]) }),
		gojq.WithFunction("_pollrelay_sub", 2, 2, func(_ any, a []any) any { return l.sub(a[0], a[1]) }),
		gojq.WithFunction("_pollrelay_div", 2, 2, func(_ any, a []any) any { return l.div(a[0], a[1]) }),
		l.compare("_pollrelay_eq", func(c int) bool { return c == 0 }),
		l.compare("_pollrelay_ne", func(c int) bool { return c != 0 }),
		l.compare("_pollrelay_lt", func(c int) bool { return c < 0 }),
		l.compare("_pollrelay_le", func(c int) bool { return c <= 0 }),
		l.compare("_pollrelay_gt", func(c int) bool { return c > 0 }),
		l.compare("_pollrelay_ge", func(c int) bool { return c >= 0 }),
	}
}

func (l Limits) compare(name string, ok func(int) bool) gojq.CompilerOption {
	return gojq.WithFunction(name, 2, 2, func(_ any, a []any) any {
		if err := l.checkBoth(a[0], a[1]); err != nil {
			return err
		}
		return ok(gojq.Compare(a[0], a[1]))
	})
}

func (l Limits) checkBoth(x, y any) error {
	if err := l.check("the left operand", x); err != nil {
		return err
	}
	return l.check("the right operand", y)
}

// scaled checks a builtin whose result is up to factor times its input.
func (l Limits) scaled(v any, factor int) any {
	if err := l.check("the input", v); err != nil {
		return err
	}
	if s, ok := v.(string); ok && len(s) > l.MaxValueBytes/factor {
		return l.tooBig("the result")
	}
	return v
}

func (l Limits) pair(v, x any) any {
	if err := l.checkBoth(v, x); err != nil {
		return err
	}
	if lengthOf(v)*lengthOf(x) > maxPairOps {
		return limitErr("comparing a value of length %d with one of length %d is more than %d steps", lengthOf(v), lengthOf(x), maxPairOps)
	}
	return v
}

func lengthOf(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []any:
		return len(x)
	case map[string]any:
		return len(x)
	}
	return 1
}

func (l Limits) join(v, sep any) any {
	if err := l.check("the input", v); err != nil {
		return err
	}
	s, _ := sep.(string)
	size, _ := measure(v, l.MaxValueBytes, l.MaxDepth)
	if size+lengthOf(v)*len(s) > l.MaxValueBytes {
		return l.tooBig("the joined string")
	}
	return v
}

// split checks split/1 (and string division): each piece costs a string
// header besides its bytes.
func (l Limits) split(v, sep any) any {
	s, ok1 := v.(string)
	p, ok2 := sep.(string)
	if !ok1 || !ok2 {
		return v
	}
	pieces := len(s)/max(len(p), 1) + 1
	if len(s)+32*pieces > l.MaxValueBytes {
		return l.tooBig("the split")
	}
	return v
}

// match checks a regular expression match: a global one can yield an
// object of a few hundred bytes for every byte of its input.
func (l Limits) match(v, flags any) any {
	s, _ := v.(string)
	f, _ := flags.(string)
	if strings.Contains(f, "g") && len(s)*256 > l.MaxValueBytes {
		return l.tooBig("a global match over " + bytesText(uint64(len(s))))
	}
	return v
}

func (l Limits) transpose(v any) any {
	if err := l.check("the input", v); err != nil {
		return err
	}
	rows, _ := v.([]any)
	longest := 0
	for _, r := range rows {
		longest = max(longest, lengthOf(r))
	}
	if len(rows)*longest*16 > l.MaxValueBytes {
		return l.tooBig("the transposed array")
	}
	return v
}

// path checks a path given to setpath, delpaths or an assignment: setpath
// fills an array with nulls up to the index it sets, and both recurse once
// per path element.
func (l Limits) path(v, p any) any {
	ps, _ := p.([]any)
	if len(ps) > l.MaxDepth {
		return l.tooDeep("the path")
	}
	maxIndex := l.MaxValueBytes / 16
	for _, e := range ps {
		idx := []any{e}
		if m, ok := e.(map[string]any); ok {
			idx = []any{m["start"], m["end"]}
		}
		for _, i := range idx {
			if f, ok := toFloat(i); ok && f > float64(maxIndex) {
				return limitErr("array index %v is more than %d (an array that long is over the limit on a value)", i, maxIndex)
			}
		}
	}
	return v
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case float64:
		return x, true
	case *big.Int:
		f, _ := new(big.Float).SetInt(x).Float64()
		return f, true
	}
	return 0, false
}

// add checks concatenation: a string or an array doubled again and again
// reaches any size in a few steps, each of them one call.
func (l Limits) add(x, y any) any {
	switch a := x.(type) {
	case string:
		if b, ok := y.(string); ok && len(a)+len(b) > l.MaxValueBytes {
			return l.tooBig("the concatenated string")
		}
	case []any:
		if b, ok := y.([]any); ok && 16*(len(a)+len(b)) > l.MaxValueBytes {
			return l.tooBig("the concatenated array")
		}
	}
	if v, ok := fastAdd(x, y); ok {
		return v
	}
	return delegate("+", x, y)
}

// fastAdd is jq's + for the common operands, without a run of gojq's own
// (which costs more than the addition): null, numbers that cannot
// overflow, strings, arrays and objects. ok is false for the rest.
func fastAdd(x, y any) (any, bool) {
	switch a := x.(type) {
	case nil:
		return y, true
	case int:
		switch b := y.(type) {
		case int:
			if s := a + b; (s > a) == (b > 0) {
				return s, true
			}
		case float64:
			return float64(a) + b, true
		}
	case float64:
		switch b := y.(type) {
		case int:
			return a + float64(b), true
		case float64:
			return a + b, true
		}
	case string:
		if b, ok := y.(string); ok {
			return a + b, true
		}
	case []any:
		if b, ok := y.([]any); ok {
			out := make([]any, 0, len(a)+len(b))
			return append(append(out, a...), b...), true
		}
	case map[string]any:
		if b, ok := y.(map[string]any); ok {
			out := make(map[string]any, len(a)+len(b))
			maps.Copy(out, a)
			maps.Copy(out, b)
			return out, true
		}
	}
	if y == nil {
		return x, true
	}
	return nil, false
}

func (l Limits) mul(x, y any) any {
	if err := l.checkBoth(x, y); err != nil {
		return err
	}
	s, n := x, y
	if _, ok := s.(string); !ok {
		s, n = y, x
	}
	if str, ok := s.(string); ok {
		if f, ok := toFloat(n); ok && f > 0 && float64(len(str))*f > float64(l.MaxValueBytes) {
			return l.tooBig("the repeated string")
		}
	}
	if bitLen(x)+bitLen(y) > maxNumberDigits*3 {
		return limitErr("the product has more than %d digits", maxNumberDigits)
	}
	return delegate("*", x, y)
}

func bitLen(v any) int {
	if b, ok := v.(*big.Int); ok {
		return b.BitLen()
	}
	return 64
}

func (l Limits) sub(x, y any) any {
	if err := l.checkBoth(x, y); err != nil {
		return err
	}
	if a, ok := x.([]any); ok {
		if b, ok := y.([]any); ok && len(a)*len(b) > maxPairOps {
			return limitErr("subtracting an array of length %d from one of length %d is more than %d steps", len(b), len(a), maxPairOps)
		}
	}
	return delegate("-", x, y)
}

func (l Limits) div(x, y any) any {
	if err := l.checkBoth(x, y); err != nil {
		return err
	}
	if err, ok := l.split(x, y).(error); ok {
		return err
	}
	return delegate("/", x, y)
}

// operatorCode holds gojq's own `$l OP $r`, so a checked operator computes
// exactly what the unchecked one would.
var operatorCode sync.Map

func delegate(op string, x, y any) any {
	c, ok := operatorCode.Load(op)
	if !ok {
		q, err := gojq.Parse("$l " + op + " $r")
		if err != nil {
			return err
		}
		code, err := gojq.Compile(q, gojq.WithVariables([]string{"$l", "$r"}))
		if err != nil {
			return err
		}
		c, _ = operatorCode.LoadOrStore(op, code)
	}
	v, _ := c.(*gojq.Code).Run(nil, x, y).Next()
	return v
}
