package diff

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/store/badger"
)

// TestWriteErrorAcknowledgesNothing: when the store refuses a poll's write,
// the poll reports the error and nothing of it is recorded, so the same
// transition is found again by the next poll once the store works.
func TestWriteErrorAcknowledgesNothing(t *testing.T) {
	dir := t.TempDir()
	src := parseSource(t, `  - name: tasks
    url: https://api.example.test/tasks
    items: '.data[]'
`)
	obs := func(state string) Poll {
		return Poll{Complete: true, Now: time.Now(), Observations: []Observation{
			{ID: "a", State: json.RawMessage(`"` + state + `"`), Object: json.RawMessage(`{}`)},
		}}
	}
	st, err := badger.Open(badger.Options{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(context.Background(), st, src, obs("queued")); err != nil {
		t.Fatal(err)
	}
	// The store fails under the poll: here it is closed, the bluntest
	// write error there is.
	st.Close()
	if _, err := Apply(context.Background(), st, src, obs("ready")); err == nil {
		t.Fatal("a poll whose write failed reported success")
	}
	st, err = badger.Open(badger.Options{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := Apply(context.Background(), st, src, obs("ready"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1 || string(res.Events[0].Previous) != `"queued"` || string(res.Events[0].Current) != `"ready"` {
		t.Fatalf("after the failed write, the next poll found %d events: %+v", len(res.Events), res.Events)
	}
}
