package jqexpr

import (
	"context"
	"testing"

	"github.com/itchyny/gojq"
)

// BenchmarkLimitsOverhead compares an evaluation under the limits with
// plain gojq on the same small item, as an id or state expression runs
// once per item per poll.
func BenchmarkLimitsOverhead(b *testing.B) {
	v, _ := Decode([]byte(`{"id": 12345, "status": {"phase": "ready", "n": [1, 2, 3]}}`))
	for _, src := range []string{`.id | tostring`, `.status.phase + "/" + (.status.n | length | tostring)`, `if .status.phase == "ready" then 1 else 0 end`} {
		q, _ := gojq.Parse(src)
		code, _ := gojq.Compile(q)
		b.Run("gojq/"+src, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for b.Loop() {
				code.RunWithContext(ctx, v).Next()
			}
		})
		e := MustCompile(src)
		b.Run("limited/"+src, func(b *testing.B) {
			for b.Loop() {
				if _, err := e.First(context.Background(), v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
