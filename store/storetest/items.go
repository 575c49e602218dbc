package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

var itemCases = []testCase{
	{"RoundTrip", testItemRoundTrip},
	{"Replace", testItemReplace},
	{"Delete", testItemDelete},
	{"BytewiseOrder", testItemOrder},
	{"ScanStops", testItemScanStops},
	{"SourceState", testSourceState},
}

func fullItem() *store.Item {
	return &store.Item{
		State:  json.RawMessage(`{"status":"open"}`),
		Object: json.RawMessage(`{"id":"1","status":"open","title":"a \u0000 b"}`),
		Since:  time.Unix(t0.Unix(), 123456789).In(time.FixedZone("x", 3600)),
		History: []store.HistoryEntry{
			{State: json.RawMessage(`"new"`), At: t0.Add(-time.Hour)},
			{State: json.RawMessage(`{"status":"open"}`), At: t0},
		},
		Pending:      json.RawMessage(`{"status":"closed"}`),
		PendingCount: 2,
		Stalled:      []int{0, 3},
	}
}

func getItem(t testing.TB, s store.Store, source, id string) *store.Item {
	t.Helper()
	var it *store.Item
	view(t, s, func(tx store.Txn) error {
		var err error
		it, err = tx.Item(source, id)
		return err
	})
	return it
}

func putItem(t testing.TB, s store.Store, source, id string, it *store.Item) {
	t.Helper()
	update(t, s, func(tx store.Txn) error { return tx.PutItem(source, id, it) })
}

// An item comes back as it was put, every field of it.
func testItemRoundTrip(t *testing.T, b Backend) {
	s := b.Open(t)
	putItem(t, s, "src", "1", fullItem())
	same(t, "Item", getItem(t, s, "src", "1"), fullItem())
	if it := getItem(t, s, "src", "2"); it != nil {
		t.Errorf("Item of an id never put = %s, want nil", show(it))
	}
	if it := getItem(t, s, "src-2", "1"); it != nil {
		t.Errorf("Item of another source = %s, want nil", show(it))
	}
}

// A new version of an item replaces all of it: an object or a pending
// state the new one lacks is gone (the diff tests Pending against nil).
func testItemReplace(t *testing.T, b Backend) {
	s := b.Open(t)
	putItem(t, s, "src", "1", fullItem())
	bare := &store.Item{State: json.RawMessage(`{"status":"closed"}`), Since: t0}
	putItem(t, s, "src", "1", bare)
	got := getItem(t, s, "src", "1")
	same(t, "Item after replacing", got, bare)
	if got != nil && (got.Object != nil || got.Pending != nil) {
		t.Errorf("replaced item kept Object %q / Pending %q, want both nil", got.Object, got.Pending)
	}
	var head *store.Item
	view(t, s, func(tx store.Txn) error {
		return tx.ItemHeads("src", func(_ string, it *store.Item) error {
			head = it
			return nil
		})
	})
	if head == nil || head.Pending != nil {
		t.Errorf("ItemHeads after replacing = %s, want the item without Pending", show(head))
	}
}

func testItemDelete(t *testing.T, b Backend) {
	s := b.Open(t)
	putItem(t, s, "src", "1", fullItem())
	putItem(t, s, "src", "2", fullItem())
	update(t, s, func(tx store.Txn) error {
		if err := tx.DeleteItem("src", "1"); err != nil {
			return err
		}
		return tx.DeleteItem("src", "never-put")
	})
	if it := getItem(t, s, "src", "1"); it != nil {
		t.Errorf("deleted item = %s, want nil", show(it))
	}
	if getItem(t, s, "src", "2") == nil {
		t.Error("deleting one item removed another")
	}
	view(t, s, func(tx store.Txn) error {
		n, err := tx.CountItems("src")
		if n != 1 {
			t.Errorf("CountItems after a delete = %d, want 1", n)
		}
		return err
	})
}

// orderIDs are ids whose bytewise order a backend's own collation or
// key encoding gets wrong: NUL, 0xff, invalid UTF-8, separators, ids that
// are prefixes of each other, case, digits, and the longest ids allowed.
func orderIDs() []string {
	return []string{
		"b", "a", "a\x00", "a\x00\x01", "a\x00\xff", "a\x01", "a/b", "a b", "ab", "A", "0", "10", "9",
		"\x00", "\x00\x00", "\x01", "\xff", "\xff\xfe", "\xc3", "\xc3\xa9", "\xe2\x80\xa8", "/", "\x00\x01",
		strings.Repeat("z", store.MaxKeyPart), strings.Repeat("\x00", store.MaxKeyPart),
		strings.Repeat("\xff", store.MaxKeyPart), "a\x00" + strings.Repeat("\x01", store.MaxKeyPart-2),
	}
}

func headItem(id string) *store.Item {
	return &store.Item{State: json.RawMessage(`"` + hexID(id) + `"`), Object: json.RawMessage(`{"o":1}`), Since: t0}
}

// hexID is a JSON-safe token unique to id.
func hexID(id string) string {
	const digits = "0123456789abcdef"
	var sb strings.Builder
	for i := 0; i < len(id) && i < 64; i++ {
		sb.WriteByte(digits[id[i]>>4])
		sb.WriteByte(digits[id[i]&15])
	}
	sb.WriteString(strings.Repeat("-", len(id)/64))
	return sb.String()
}

// Items, ItemHeads and ScanItemHeads list a source's items in bytewise id
// order, whatever bytes the ids hold, and nothing of another source: the
// diff's compact index binary-searches that order.
func testItemOrder(t *testing.T, b Backend) {
	s := b.Open(t)
	ids := orderIDs()
	update(t, s, func(tx store.Txn) error {
		for _, id := range ids {
			if err := tx.PutItem("src", id, headItem(id)); err != nil {
				return err
			}
			// Neighbouring sources must not show in src's scans.
			for _, other := range []string{"sr", "src-2", "src2"} {
				if err := tx.PutItem(other, id, headItem(other)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	want := slices.Clone(ids)
	slices.Sort(want)
	view(t, s, func(tx store.Txn) error {
		var items, heads, scanned []string
		err := errors.Join(
			tx.Items("src", func(id string, it *store.Item) error {
				items = append(items, id)
				same(t, "Items item "+hexID(id), it, headItem(id))
				return nil
			}),
			tx.ItemHeads("src", func(id string, it *store.Item) error {
				heads = append(heads, id)
				if string(it.State) != string(headItem(id).State) || it.Object != nil {
					t.Errorf("ItemHeads %q: state %s object %s, want state %s and no object", hexID(id), it.State, it.Object, headItem(id).State)
				}
				return nil
			}),
			tx.ScanItemHeads("src", func(id []byte, it *store.Item) error {
				scanned = append(scanned, string(id))
				if string(it.State) != string(headItem(string(id)).State) {
					t.Errorf("ScanItemHeads %q: state %s", hexID(string(id)), it.State)
				}
				return nil
			}, nil),
		)
		for name, got := range map[string][]string{"Items": items, "ItemHeads": heads, "ScanItemHeads": scanned} {
			if !slices.Equal(got, want) {
				t.Errorf("%s order:\n got %s\nwant %s", name, brief(got), brief(want))
			}
		}
		n, cerr := tx.CountItems("src")
		if n != len(ids) {
			t.Errorf("CountItems = %d, want %d", n, len(ids))
		}
		return errors.Join(err, cerr)
	})
}

// A scan ends at the first error its callback returns, and returns it.
func testItemScanStops(t *testing.T, b Backend) {
	s := b.Open(t)
	update(t, s, func(tx store.Txn) error {
		for _, id := range []string{"a", "b", "c"} {
			if err := tx.PutItem("src", id, headItem(id)); err != nil {
				return err
			}
		}
		return nil
	})
	stop := errors.New("stop")
	view(t, s, func(tx store.Txn) error {
		scans := map[string]func(func() error) error{
			"Items": func(f func() error) error {
				return tx.Items("src", func(string, *store.Item) error { return f() })
			},
			"ItemHeads": func(f func() error) error {
				return tx.ItemHeads("src", func(string, *store.Item) error { return f() })
			},
			"ScanItemHeads": func(f func() error) error {
				return tx.ScanItemHeads("src", func([]byte, *store.Item) error { return f() }, nil)
			},
		}
		for name, scan := range scans {
			calls := 0
			err := scan(func() error {
				calls++
				return stop
			})
			if !errors.Is(err, stop) || calls != 1 {
				t.Errorf("%s with a callback failing at once: %d calls, error %v; want 1 call and the callback's error", name, calls, err)
			}
		}
		return nil
	})
}

func testSourceState(t *testing.T, b Backend) {
	s := b.Open(t)
	st := store.SourceState{
		Baselined: true, ETag: `"v1"`, LastModified: "Sun, 01 Mar 2026 12:00:00 GMT", ValidatorsFor: "cfg-1",
		SuspectPolls: 2, ListingDigest: "d1", ListingTracked: 7,
	}
	view(t, s, func(tx store.Txn) error {
		got, err := tx.SourceState("src")
		if got != (store.SourceState{}) {
			t.Errorf("SourceState of a source never polled = %+v, want zero", got)
		}
		return err
	})
	update(t, s, func(tx store.Txn) error { return tx.PutSourceState("src", st) })
	update(t, s, func(tx store.Txn) error { return tx.PutSourceState("src-2", store.SourceState{ETag: "other"}) })
	view(t, s, func(tx store.Txn) error {
		got, err := tx.SourceState("src")
		if got != st {
			t.Errorf("SourceState = %+v, want %+v", got, st)
		}
		return err
	})
}
