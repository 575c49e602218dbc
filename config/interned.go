package config

import (
	"runtime"
	"sync"
	"weak"

	"github.com/pollrelay/pollrelay/jqexpr"
)

// interned holds compiled expressions by their text, weakly: ten thousand
// sources with the same `.data[]` share one, and a reload reuses those the
// running config compiled. An expression no config uses any more is
// collected and its entry removed. A compiled expression is immutable and
// safe for concurrent use, so sharing it is safe; config compiles every
// expression with the default limits, so its text is the whole key.
var interned sync.Map // string → weak.Pointer[jqexpr.Expr]

// compileInterned is jqexpr.Compile, sharing an identical expression
// already compiled.
func compileInterned(src string) (*jqexpr.Expr, error) {
	if v, ok := interned.Load(src); ok {
		if e := v.(weak.Pointer[jqexpr.Expr]).Value(); e != nil {
			return e, nil
		}
	}
	e, err := jqexpr.Compile(src)
	if err != nil {
		return nil, err
	}
	wp := weak.Make(e)
	interned.Store(src, wp)
	runtime.AddCleanup(e, func(src string) { interned.CompareAndDelete(src, wp) }, src)
	return e, nil
}
