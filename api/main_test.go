package api

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// loop here must have one way to stop, and the tests must use it.
func TestMain(m *testing.M) {
	// The jq watchdog lives as long as the process, by design.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/pollrelay/pollrelay/jqexpr.(*watchdog).loop"))
}
