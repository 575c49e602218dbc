package main

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestStopInOrderBounded: a step that never ends stops shutdown only
// until the limit, and the error names it; the steps before it ran, the
// ones after it wait for it.
func TestStopInOrderBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		var ran []string
		step := func(name string, err error) stopStep {
			return stopStep{name, func() error { ran = append(ran, name); return err }}
		}
		err := stopInOrder([]stopStep{
			step("first", errors.New("first failed")),
			{"closing the store", func() error { <-block; return nil }},
			step("after", nil),
		}, 3*time.Second)
		if err == nil || !strings.Contains(err.Error(), "closing the store did not end") || !strings.Contains(err.Error(), "3s") {
			t.Errorf("err = %v", err)
		}
		close(block)
		synctest.Wait()
		if len(ran) != 2 || ran[0] != "first" || ran[1] != "after" {
			t.Errorf("ran %v", ran) // "after" runs once the stuck step ends
		}

		err = stopInOrder([]stopStep{step("a", errors.New("a failed")), step("b", nil), step("c", errors.New("c failed"))}, time.Second)
		if err == nil || !strings.Contains(err.Error(), "a failed") || !strings.Contains(err.Error(), "c failed") {
			t.Errorf("errors not joined: %v", err)
		}
	})
}
