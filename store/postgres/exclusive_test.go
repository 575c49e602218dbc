package postgres

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
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

// exclusiveThroughProxy opens an Exclusive store on a fresh schema
// through a proxy that can cut it, checking its session often, and
// returns it with the schema and the proxy; the test's end closes it.
func exclusiveThroughProxy(t *testing.T) (*Store, string, *harness.Proxy) {
	t.Helper()
	check := schemaCheck
	schemaCheck = 50 * time.Millisecond
	t.Cleanup(func() { schemaCheck = check })
	u, err := url.Parse(testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := harness.NewProxy(t, u.Host)
	u.Host = p.Addr
	schema := freshSchema(t)
	s, err := Open(Options{URL: u.String(), Schema: schema, Exclusive: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, schema, p
}

// A database that goes away ends the session holding the schema's lock,
// and the lock with it. The store takes it again once the database is
// back, so a second copy started after that is still refused.
func TestExclusiveTakesTheSchemaAgain(t *testing.T) {
	s, schema, proxy := exclusiveThroughProxy(t)
	if !s.HoldsSchema() {
		t.Fatal("an exclusive store does not hold its schema")
	}
	proxy.Cut()
	harness.WaitFor(t, 10*time.Second, func() bool { return !s.HoldsSchema() })
	proxy.Restore()
	harness.WaitFor(t, 10*time.Second, s.HoldsSchema)
	if other, err := Open(Options{URL: testURL(t), Schema: schema, Exclusive: true, Logger: quiet}); !errors.Is(err, ErrInUse) {
		if err == nil {
			other.Close()
		}
		t.Fatalf("a second exclusive open after the outage = %v, want ErrInUse", err)
	}
	select {
	case err := <-s.Lost():
		t.Fatalf("lost the schema: %v", err)
	default:
	}
}

// A copy that took the schema while the first's database connection was
// gone keeps it, and the first is told it has lost it.
func TestExclusiveLostToAnotherCopy(t *testing.T) {
	s, schema, proxy := exclusiveThroughProxy(t)
	proxy.Cut()
	// The server drops the cut session's lock once it notices.
	var other *Store
	harness.WaitFor(t, 10*time.Second, func() bool {
		var err error
		other, err = Open(Options{URL: testURL(t), Schema: schema, Exclusive: true, Logger: quiet})
		return err == nil
	})
	defer other.Close()
	proxy.Restore()
	select {
	case err := <-s.Lost():
		if !errors.Is(err, ErrInUse) {
			t.Fatalf("lost with %v, want ErrInUse", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first copy was not told it lost the schema")
	}
	if s.HoldsSchema() || !other.HoldsSchema() {
		t.Errorf("after the takeover: first holds %v, second %v", s.HoldsSchema(), other.HoldsSchema())
	}
}

// A connection cut without the server hearing of it leaves the store's
// session, and the lock, alive there. The store ends its own old session
// and takes the lock again, rather than taking it for another copy's.
func TestExclusiveEndsItsOwnCutOffSession(t *testing.T) {
	s, schema, proxy := exclusiveThroughProxy(t)
	proxy.Partition()
	harness.WaitFor(t, 10*time.Second, func() bool { return !s.HoldsSchema() })
	proxy.Restore()
	harness.WaitFor(t, 10*time.Second, s.HoldsSchema)
	select {
	case err := <-s.Lost():
		t.Fatalf("lost the schema to its own old session: %v", err)
	default:
	}
	if other, err := Open(Options{URL: testURL(t), Schema: schema, Exclusive: true, Logger: quiet}); !errors.Is(err, ErrInUse) {
		if err == nil {
			other.Close()
		}
		t.Fatalf("a second exclusive open = %v, want ErrInUse", err)
	}
	s.Close() // and again at the test's end: Close may be called twice
}
