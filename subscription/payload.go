package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/jqexpr"
)

// sampleEnvelopes are what a payload program is tried on before it is
// accepted: a transition with an object, and a ping (its own shape, which
// every subscription must be able to receive).
func sampleEnvelopes() []any {
	at := time.Date(2026, 1, 15, 10, 30, 0, 123e6, time.UTC)
	events := []*event.Event{
		{Type: "videos.status.ready", Kind: event.Changed, Source: "videos", ItemID: "v_123",
			Previous: json.RawMessage(`"processing"`), Current: json.RawMessage(`"ready"`),
			Object: json.RawMessage(`{"id":"v_123","status":"ready"}`), CreatedAt: at},
		// notifier.PingType and PingSource; notifier imports this package.
		{Type: "pollrelay.ping", Kind: event.Ping, Source: "pollrelay", ItemID: "app",
			Previous: event.Null, Current: event.Null, CreatedAt: at},
	}
	out := make([]any, 0, len(events))
	for _, e := range events {
		raw, err := e.EnvelopeJSON()
		if err != nil {
			panic(err) // built from constants
		}
		v, err := jqexpr.Decode(raw)
		if err != nil {
			panic(err)
		}
		out = append(out, v)
	}
	return out
}

// TryPayload runs the spec's payload program over sample envelopes under
// its limits. It fails when the program does not compile, goes over a
// limit on any of them (it would on real events too: a runaway program
// does not depend on the data to run away), or fails on every one (it
// cannot build the body of any event). A program that fails on one sample
// only may be reading a field the samples lack, and is accepted. A
// validated spec was compiled already; trying it is kept apart because a
// program may take its whole deadline.
func (s *Spec) TryPayload() error {
	if defaultPayload(s.Payload) {
		return nil
	}
	e, err := jqexpr.Compile(s.Payload)
	if err != nil {
		return err
	}
	var first error
	failed := 0
	samples := sampleEnvelopes()
	for _, v := range samples {
		_, err := e.First(context.Background(), v)
		if errors.Is(err, jqexpr.ErrLimit) {
			return fmt.Errorf("%w (tried on a sample event)", err)
		}
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if failed == len(samples) {
		return fmt.Errorf("fails on every sample event: %w", first)
	}
	return nil
}
