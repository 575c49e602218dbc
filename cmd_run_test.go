package main

import (
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
)

// memory_limit_bytes sets the runtime's soft limit, 0 leaves none, and
// GOMEMLIMIT, which the runtime read at start, wins over both.
func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Setenv("GOMEMLIMIT", "")
	debug.SetMemoryLimit(math.MaxInt64)
	setMemoryLimit(64<<20, log)
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Errorf("limit %d, want %d", got, 64<<20)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	setMemoryLimit(0, log)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory_limit_bytes 0 set a limit: %d", got)
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetMemoryLimit(1 << 30)
	setMemoryLimit(64<<20, log)
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("GOMEMLIMIT overridden: %d", got)
	}
}
