package badger

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestItemCodecRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	items := []Item{
		{State: json.RawMessage(`"ready"`)},
		{State: json.RawMessage(`{"a":1}`), Object: json.RawMessage(`{"id":"x"}`), Since: at,
			History: []HistoryEntry{{State: json.RawMessage(`"queued"`), At: at.Add(-time.Hour)}, {State: json.RawMessage(`{"a":1}`), At: at}},
			Pending: json.RawMessage(`"errored"`), PendingCount: 2, Stalled: []int{0, 3}},
	}
	for _, want := range items {
		var got Item
		if err := decodeItem(encodeItem(nil, &want), &got, true); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}

// Records written before the binary encoding are JSON and must still read.
func TestItemCodecReadsJSON(t *testing.T) {
	want := Item{State: json.RawMessage(`"ready"`), Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), PendingCount: 1}
	v, _ := json.Marshal(&want)
	var got Item
	if err := decodeItem(v, &got, true); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestItemCodecRejectsTruncated(t *testing.T) {
	v := encodeItem(nil, &Item{State: json.RawMessage(`"ready"`), History: []HistoryEntry{{State: json.RawMessage(`"a"`)}}})
	for n := 1; n < len(v); n++ {
		var it Item
		if err := decodeItem(v[:n], &it, true); err == nil {
			t.Errorf("decoding %d of %d bytes: no error", n, len(v))
		}
	}
}

func TestItemCodecWithoutObject(t *testing.T) {
	want := Item{State: json.RawMessage(`"ready"`), Object: json.RawMessage(`{"big":true}`), Pending: json.RawMessage(`"x"`),
		History: []HistoryEntry{{State: json.RawMessage(`"ready"`)}}}
	v := encodeItem(nil, &want)
	var got Item
	if err := decodeItem(v, &got, false); err != nil {
		t.Fatal(err)
	}
	clear(v) // the decoded fields must not alias the value
	want.Object = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
