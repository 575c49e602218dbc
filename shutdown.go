package main

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// shutdownBound is how long shutdown may take beyond
// delivery.shutdown_grace: stopping the pollers and the API and closing
// the store. A step that blocks for good (a store that cannot flush, a
// write waiting for it) must not keep the process from exiting; past the
// bound it exits non-zero, leaving the store as a killed process would,
// which every commit being synced makes safe.
const shutdownBound = 10 * time.Second

// stopStep is one step of the shutdown order.
type stopStep struct {
	name string // what is being done, for the error naming a step stuck
	run  func() error
}

// stopInOrder runs steps one after the other and returns their errors
// joined, or, once limit has passed, an error naming the step still
// running. That step is abandoned, with the ones after it, to the
// process's exit.
func stopInOrder(steps []stopStep, limit time.Duration) error {
	var at atomic.Int32
	done := make(chan error, 1) // buffered: an abandoned run still ends
	go func() {
		var errs []error
		for i, s := range steps {
			at.Store(int32(i))
			if err := s.run(); err != nil {
				errs = append(errs, err)
			}
		}
		done <- errors.Join(errs...)
	}()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("shutdown did not finish within %s (delivery.shutdown_grace + %s): %s did not end; exiting without it",
			limit, shutdownBound, steps[at.Load()].name)
	}
}
