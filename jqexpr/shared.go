package jqexpr

import (
	"runtime"
	"sync"
	"weak"
)

// shared holds compiled expressions by their text, weakly: ten thousand
// sources with the same `.data[]` share one, and a reload reuses those the
// running sources compiled. An expression nothing uses any more is
// collected and its entry removed. An Expr is immutable and safe for
// concurrent use, so sharing it is safe; Shared compiles under the
// default limits, so the text is the whole key.
var shared sync.Map // string → weak.Pointer[Expr]

// Shared is Compile, returning an identical expression already compiled
// and still in use instead of compiling it again.
func Shared(src string) (*Expr, error) {
	if v, ok := shared.Load(src); ok {
		if e := v.(weak.Pointer[Expr]).Value(); e != nil {
			return e, nil
		}
	}
	e, err := Compile(src)
	if err != nil {
		return nil, err
	}
	wp := weak.Make(e)
	shared.Store(src, wp)
	runtime.AddCleanup(e, func(src string) { shared.CompareAndDelete(src, wp) }, src)
	return e, nil
}
