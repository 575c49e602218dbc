package jqexpr

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/itchyny/gojq"
)

// operators maps the operators rewritten into checked calls. gojq compiles
// them straight to its internal functions, which a definition cannot
// replace, so the syntax tree is rewritten instead.
var operators = map[gojq.Operator]string{
	gojq.OpAdd: "_pollrelay_add", gojq.OpMul: "_pollrelay_mul", gojq.OpSub: "_pollrelay_sub", gojq.OpDiv: "_pollrelay_div",
	gojq.OpEq: "_pollrelay_eq", gojq.OpNe: "_pollrelay_ne",
	gojq.OpLt: "_pollrelay_lt", gojq.OpLe: "_pollrelay_le",
	gojq.OpGt: "_pollrelay_gt", gojq.OpGe: "_pollrelay_ge",
	// A constant path (`.[N] = x`) compiles to setpath directly; as a call
	// of _assign it goes through the checked definition.
	gojq.OpAssign: "_assign",
}

// implicit are the functions gojq calls for an operator.
var implicit = map[gojq.Operator][]string{
	gojq.OpModify: {"_modify"}, gojq.OpUpdateAdd: {"_modify", "_add"}, gojq.OpUpdateAlt: {"_modify"},
	gojq.OpUpdateMod: {"_modify"}, gojq.OpUpdateSub: {"_modify", "_subtract"},
	gojq.OpUpdateMul: {"_modify", "_multiply"}, gojq.OpUpdateDiv: {"_modify", "_divide"},
}

var formats = map[string]string{
	"@text": "tostring", "@json": "tojson", "@html": "_tohtml", "@uri": "_touri", "@urid": "_tourid",
	"@csv": "_tocsv", "@tsv": "_totsv", "@sh": "_tosh", "@base64": "_tobase64", "@base64d": "_tobase64d",
}

var (
	queryType = reflect.TypeFor[*gojq.Query]()
	termType  = reflect.TypeFor[*gojq.Term]()
	funcType  = reflect.TypeFor[*gojq.Func]()
)

// walk calls visit on every query, term and function call under v.
func walk(v reflect.Value, visit func(any)) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		switch v.Type() {
		case queryType, termType, funcType:
			visit(v.Interface())
		}
		walk(v.Elem(), visit)
	case reflect.Struct:
		for i := range v.NumField() {
			walk(v.Field(i), visit)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walk(v.Index(i), visit)
		}
	}
}

// uses returns the names of the functions q may call, including those its
// operators, formats and string interpolations call.
func uses(q *gojq.Query) map[string]bool {
	names := map[string]bool{}
	walk(reflect.ValueOf(q), func(n any) {
		switch x := n.(type) {
		case *gojq.Query:
			if name, ok := operators[x.Op]; ok && x.Term == nil {
				names[name] = true
			}
			for _, name := range implicit[x.Op] {
				names[name] = true
			}
		case *gojq.Term:
			if x.Format != "" {
				if name, ok := formats[x.Format]; ok {
					names[name] = true
				} else {
					names["format"] = true
				}
			}
			if x.Str != nil && len(x.Str.Queries) > 0 {
				names["tostring"] = true
			}
		case *gojq.Func:
			names[x.Name] = true
		}
	})
	return names
}

// internalCalls refuses calls of functions whose names start with `_` that
// the expression does not define itself: gojq's internal functions
// (`_sort_by`, `_equal`, `_match`, …) and the prelude's own names would
// reach the unchecked builtins behind the checks.
func internalCalls(q *gojq.Query) error {
	defined := map[string]bool{}
	var called []string
	walk(reflect.ValueOf(q), func(n any) {
		switch x := n.(type) {
		case *gojq.Query:
			for _, fd := range x.FuncDefs {
				defined[fd.Name] = true
			}
		case *gojq.Func:
			if strings.HasPrefix(x.Name, "_") {
				called = append(called, x.Name)
			}
		}
	})
	for _, name := range called {
		if !defined[name] {
			return fmt.Errorf("%s is internal to jq; call the documented function instead", name)
		}
	}
	return nil
}

// rewrite turns the operators in q into calls of their checked forms.
func rewrite(q *gojq.Query) {
	walk(reflect.ValueOf(q), func(n any) {
		x, ok := n.(*gojq.Query)
		if !ok || x.Term != nil {
			return
		}
		if name, ok := operators[x.Op]; ok {
			x.Term = &gojq.Term{Type: gojq.TermTypeFunc, Func: &gojq.Func{Name: name, Args: []*gojq.Query{x.Left, x.Right}}}
			x.Left, x.Right, x.Op = nil, nil, 0
		}
	})
}

// preludeDefs are the prelude's definitions in order, with the names each
// one's body uses; parsed once, since only their text is shared.
var preludeDefs = sync.OnceValue(func() []preludeDef {
	q, err := gojq.Parse(prelude)
	if err != nil {
		panic(fmt.Sprintf("jqexpr prelude: %v", err))
	}
	out := make([]preludeDef, len(q.FuncDefs))
	for i, fd := range q.FuncDefs {
		out[i] = preludeDef{name: fd.Name, src: fd.String(), uses: uses(fd.Body)}
	}
	return out
})

type preludeDef struct {
	name string
	src  string
	uses map[string]bool
}

// withPrelude puts before q's own definitions those of the prelude that q
// uses, directly or through other prelude definitions, and rewrites the
// operators of both.
func withPrelude(q *gojq.Query) (*gojq.Query, error) {
	if err := internalCalls(q); err != nil {
		return nil, err
	}
	defs := preludeDefs()
	need := uses(q)
	for changed := true; changed; {
		changed = false
		for _, d := range defs {
			if need[d.name] {
				for n := range d.uses {
					if !need[n] {
						need[n], changed = true, true
					}
				}
			}
		}
	}
	var src strings.Builder
	for _, d := range defs {
		if need[d.name] {
			src.WriteString(d.src)
			src.WriteByte(' ')
		}
	}
	src.WriteString(".")
	// Parsed again for each expression: gojq's compiler may change the
	// tree it compiles.
	p, err := gojq.Parse(src.String())
	if err != nil {
		return nil, err
	}
	q.FuncDefs = append(p.FuncDefs, q.FuncDefs...)
	rewrite(q)
	return q, nil
}
