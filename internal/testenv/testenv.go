// Package testenv lets a test say what it needs from the machine. Outside
// CI a missing dependency skips the test, so a laptop without node or root
// can still run the suite; in CI (CI=true, as every CI system sets it) it
// fails, because a skip there would hide exactly what the test exists to
// check.
package testenv

import (
	"os"
	"strconv"
	"testing"
)

// InCI reports whether the tests run in CI: CI set to a true value.
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Missing stops a test whose dependency is missing: a skip outside CI, a
// failure in it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true, and a test dependency is missing: "+format, args...)
	}
	t.Skipf(format, args...)
}
