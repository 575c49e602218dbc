package jqexpr

import (
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Limits bound one evaluation of an expression. gojq checks its context
// between instructions, so a deadline stops a loop, but a single builtin
// (a string repeated a billion times, the encoding of a value that shares
// one array a million times) runs to its end once called, and memory is not
// bounded at all. The three limits together keep a hostile expression from
// taking the process down: the deadline bounds time, the heap bound stops
// an evaluation that builds step by step, and the value bound is checked
// before every builtin that could build or walk a value larger than it in
// one call, and on every value an expression yields.
type Limits struct {
	// Timeout bounds the whole evaluation (every value it yields).
	Timeout time.Duration
	// MaxValueBytes bounds the size of any value, estimated as its JSON
	// encoding with shared parts counted each time they appear, that a
	// builtin may take or build and that the expression may yield.
	MaxValueBytes int
	// MaxDepth bounds the nesting of such values: encoders and comparisons
	// recurse on the goroutine stack, and Go ends the process, not the
	// goroutine, when a stack overflows.
	MaxDepth int
	// MaxHeapGrowth bounds how far the process heap may grow while the
	// evaluation runs. The heap is the process's, so evaluations running
	// at the same time share the bound.
	MaxHeapGrowth uint64
}

// DefaultLimits are the limits of every expression unless set otherwise.
// An extraction or a payload over real data takes microseconds to
// milliseconds: a second is far beyond any of them and short enough that a
// runaway expression costs a poll or a delivery, not a core. 64 MiB is
// six times the default max_body_bytes, so any value built from a listing
// fits; 10,000 levels is encoding/json's own nesting limit on the way in.
var DefaultLimits = Limits{
	Timeout:       time.Second,
	MaxValueBytes: 64 << 20,
	MaxDepth:      10000,
	MaxHeapGrowth: 128 << 20,
}

// ErrLimit is wrapped by every error of an evaluation stopped by a limit.
var ErrLimit = errors.New("over a limit")

// LimitError tells which limit an evaluation ran into.
type LimitError struct{ What string }

func (e *LimitError) Error() string { return e.What }

// Unwrap makes errors.Is(err, ErrLimit) hold.
func (e *LimitError) Unwrap() error { return ErrLimit }

func limitErr(format string, a ...any) *LimitError {
	return &LimitError{What: fmt.Sprintf(format, a...)}
}

func (l Limits) tooBig(what string) *LimitError {
	return limitErr("%s is larger than %s (the limit on a value built by jq)", what, bytesText(uint64(l.MaxValueBytes)))
}

func (l Limits) tooDeep(what string) *LimitError {
	return limitErr("%s is nested deeper than %d levels", what, l.MaxDepth)
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// measure estimates the encoded size of v, walking it without recursion
// and counting a part shared by several places each time, as an encoder
// would. It gives up as soon as the size passes budget or the nesting
// passes maxDepth, so it costs at most about budget steps whatever v is.
func measure(v any, budget, maxDepth int) (size int, deep bool) {
	type frame struct {
		v     any
		depth int
	}
	stack := []frame{{v, 1}}
	for len(stack) > 0 && size <= budget {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch x := f.v.(type) {
		case string:
			size += len(x) + 2
		case *big.Int:
			size += x.BitLen()/3 + 1
		case []any:
			if f.depth > maxDepth {
				return size, true
			}
			if size += 2 + len(x); size > budget {
				return size, false
			}
			for _, e := range x {
				stack = append(stack, frame{e, f.depth + 1})
			}
		case map[string]any:
			if f.depth > maxDepth {
				return size, true
			}
			if size += 2 + 4*len(x); size > budget {
				return size, false
			}
			for k, e := range x {
				size += len(k)
				stack = append(stack, frame{e, f.depth + 1})
			}
		default:
			size += 8
		}
	}
	return size, false
}

// check returns an error when v is over the value or depth limit.
func (l Limits) check(what string, v any) error {
	size, deep := measure(v, l.MaxValueBytes, l.MaxDepth)
	if deep {
		return l.tooDeep(what)
	}
	if size > l.MaxValueBytes {
		return l.tooBig(what)
	}
	return nil
}
