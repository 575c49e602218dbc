package badger

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/internal/syncbuf"
	"github.com/pollrelay/pollrelay/internal/tmpfs"
)

// TestSpaceGuard runs a store on a 96 MiB tmpfs and fills the device under
// it: below MinFreeSpace new data (events) is refused and leaves nothing
// behind while delivery records are still written; below ReserveSpace
// nothing is; once the filler is gone, writes resume by themselves. The
// refusals read as ENOSPC, are logged once per change and counted.
// Mounting needs root; elsewhere the test is skipped.
func TestSpaceGuard(t *testing.T) {
	mnt := tmpfs.Mount(t, "96m")
	dir := filepath.Join(mnt, "data")
	logs := &syncbuf.Buffer{}
	s, err := Open(Options{Path: dir, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // before the umount: cleanups run last first
	cs := s.Collectors()
	if len(cs) != 3 {
		t.Fatalf("%d collectors, want the free-space gauge, the refusal counter and the quarantine counter", len(cs))
	}
	gauge, refused := cs[0], cs[1].(*prometheus.CounterVec)
	free := func() float64 { return testutil.ToFloat64(gauge) }

	addEvent := func() (string, error) {
		e := &event.Event{ID: event.NewID(time.Now()), Type: "t.changed", Source: "t", ItemID: "a", CreatedAt: time.Now()}
		return e.ID, s.update(func(tx *Txn) error { return tx.AddEvent(e) })
	}
	putDelivery := func(id string) error {
		return s.update(func(tx *Txn) error {
			return tx.PutDelivery(&Delivery{Subscription: "app", EventID: id, State: Pending, NextAt: time.Now()}, nil)
		})
	}
	stored := func(id string) bool {
		var e *event.Event
		mustView(t, s, func(tx *Txn) error {
			var err error
			e, err = tx.Event(id)
			return err
		})
		return e != nil
	}
	refusedAsENOSPC := func(what string, err error, floorMiB int) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: written with %.0f MiB free", what, free()/(1<<20))
		}
		if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") ||
			!strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), fmt.Sprintf("less than %d MiB free", floorMiB)) {
			t.Errorf("%s: the error does not say where and why: %v", what, err)
		}
	}

	if _, err := addEvent(); err != nil {
		t.Fatalf("with the device empty: %v", err)
	}

	// Below MinFreeSpace: new data is refused, deliveries go on.
	removeLow := tmpfs.Fill(t, mnt, 48<<20)
	if f := free(); f >= MinFreeSpace || f < ReserveSpace {
		t.Fatalf("filled to %.1f MiB free, want between 32 and 64", f/(1<<20))
	}
	id, err := addEvent()
	refusedAsENOSPC("an event", err, 64)
	if stored(id) {
		t.Error("a refused event was stored")
	}
	b := s.newBatch()
	e := &event.Event{ID: event.NewID(time.Now()), Type: "t.changed", CreatedAt: time.Now()}
	if err := b.group(func(tx *Txn) error { return tx.AddEvent(e) }); err != nil {
		t.Fatal(err)
	}
	refusedAsENOSPC("a batch", b.Commit(), 64)
	if stored(e.ID) {
		t.Error("a refused batch was stored")
	}
	if err := putDelivery("evt_low"); err != nil {
		t.Errorf("a delivery record was refused with %.0f MiB free: %v", free()/(1<<20), err)
	}
	if err := s.update(func(*Txn) error { return nil }); err != nil {
		t.Errorf("a transaction that writes nothing was refused: %v", err)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"store: disk nearly full") || !strings.Contains(logs.String(), "path="+dir) ||
		!strings.Contains(logs.String(), "free_bytes=") {
		t.Errorf("no warning naming the path and free bytes:\n%s", logs)
	}

	// Below ReserveSpace: nothing is written.
	removeCritical := tmpfs.Fill(t, mnt, 16<<20)
	if f := free(); f >= ReserveSpace {
		t.Fatalf("filled to %.1f MiB free, want less than 32", f/(1<<20))
	}
	refusedAsENOSPC("a delivery record", putDelivery("evt_critical"), 32)
	if !strings.Contains(logs.String(), "level=ERROR msg=\"store: disk full") {
		t.Errorf("no error when deliveries stop too:\n%s", logs)
	}
	if n := testutil.ToFloat64(refused.WithLabelValues("new_data")); n != 2 {
		t.Errorf("refused new_data = %v, want 2", n)
	}
	if n := testutil.ToFloat64(refused.WithLabelValues("delivery")); n != 1 {
		t.Errorf("refused delivery = %v, want 1", n)
	}

	// Space freed: the next write goes through, nobody having told the
	// store or read the gauge.
	removeCritical()
	if err := putDelivery("evt_back"); err != nil {
		t.Errorf("a delivery record was refused with more than 32 MiB free: %v", err)
	}
	removeLow()
	id, err = addEvent()
	if err != nil || !stored(id) {
		t.Fatalf("an event after the filler was removed: stored %t, %v", stored(id), err)
	}
	// One line per change of level, none per refused write.
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		_, msg, _ := strings.Cut(l, "msg=\"store: ")
		msg, _, _ = strings.Cut(msg, ";")
		got = append(got, msg)
	}
	if want := []string{"disk nearly full", "disk full", "disk nearly full", "free space is back"}; !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q:\n%s", got, want, logs)
	}
}

// TestSpaceGuardInMemory: an in-memory store has no device to fill, no
// guard and no metrics.
func TestSpaceGuardInMemory(t *testing.T) {
	s, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if cs := s.Collectors(); len(cs) != 1 {
		t.Errorf("in-memory store exposes %d collectors, want the quarantine counter only", len(cs))
	}
	e := &event.Event{ID: event.NewID(time.Now()), Type: "t", CreatedAt: time.Now()}
	mustUpdate(t, s, func(tx *Txn) error { return tx.AddEvent(e) })
}
