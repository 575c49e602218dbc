package postgres

import (
	"errors"
	"testing"
)

// Two stores opened Exclusive on one schema: the second is refused while
// the first is open, and opens once it is closed; a store that is not
// Exclusive (a test, probe) is not held back.
func TestExclusiveRefusesASecondStore(t *testing.T) {
	schema := freshSchema(t)
	first, err := Open(Options{URL: testURL(t), Schema: schema, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(Options{URL: testURL(t), Schema: schema, Exclusive: true})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second exclusive open = %v, want ErrInUse", err)
	}
	shared, err := Open(Options{URL: testURL(t), Schema: schema})
	if err != nil {
		t.Fatalf("an open that is not exclusive: %v", err)
	}
	shared.Close()
	other, err := Open(Options{URL: testURL(t), Schema: freshSchema(t), Exclusive: true})
	if err != nil {
		t.Fatalf("another schema: %v", err)
	}
	other.Close()
	first.Close()
	again, err := Open(Options{URL: testURL(t), Schema: schema, Exclusive: true})
	if err != nil {
		t.Fatalf("exclusive open after the first closed: %v", err)
	}
	again.Close()
}

// Close gives the schema up before it returns, so a pollrelay restarted
// at once (a rolling restart, a test's second bridge) is not refused by
// the session of the one that just stopped, which the server ends only
// some time after the client hangs up.
func TestCloseReleasesTheSchemaAtOnce(t *testing.T) {
	schema := freshSchema(t)
	for i := range 40 {
		s, err := Open(Options{URL: testURL(t), Schema: schema, Exclusive: true, Logger: quiet})
		if err != nil {
			t.Fatalf("open %d, right after the last closed: %v", i+1, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close %d: %v", i+1, err)
		}
	}
}
