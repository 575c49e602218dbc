package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/internal/jsgen"
	"github.com/pollrelay/pollrelay/jqexpr"
)

// TestBodiesSurviveJSONStringify holds every body pollrelay sends, default
// envelope and reshaped alike, to what a Node receiver's
// JSON.stringify(req.body) gives back: upstream objects with integer-like
// keys, U+2028, HTML characters, odd numbers and repeated keys included.
func TestBodiesSurviveJSONStringify(t *testing.T) {
	jsgen.NeedNode(t)
	docs := jsgen.Docs(7, 1500)
	payloads := []*jqexpr.Expr{
		nil,
		jqexpr.MustCompile(`{event: .type, timestamp: .timestamp, data: .data.object}`),
		jqexpr.MustCompile(`{type: "session_status_changed", payload: {old_status: .data.previous, new_status: .data.current, session_data: .data.object}}`),
	}
	var bodies [][]byte
	for i, d := range docs {
		var obj any
		if json.Unmarshal(d, &obj) != nil {
			continue // a document Go refuses (a lone surrogate is fine, but not every edge is)
		}
		canon, err := event.Canonical(obj)
		if err != nil {
			t.Fatal(err)
		}
		ev := &event.Event{ID: "evt_1", Type: "model.processed", Kind: event.Changed, Source: "models",
			ItemID: "m\u2028<1>", Previous: json.RawMessage(`"PROCESSING"`), Current: canon, Object: canon,
			CreatedAt: time.Unix(1700000000, 123e6)}
		b, err := Body(context.Background(), ev, payloads[i%len(payloads)])
		if err != nil {
			t.Fatalf("body of %s: %v", d, err)
		}
		bodies = append(bodies, b)
	}
	again := jsgen.Stringify(t, bodies)
	for i, b := range bodies {
		if !bytes.Equal(b, again[i]) {
			t.Errorf("JSON.stringify(JSON.parse(body)) differs:\n body %s\n node %s", b, again[i])
		}
	}
}
