package api

import (
	"fmt"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// TestRotatedKeepsNewestWithinBounds: the new secret signs first, the
// others keep signing for the overlap after their first rotation, and
// however often secrets are rotated no more than maxSigningSecrets sign.
func TestRotatedKeepsNewestWithinBounds(t *testing.T) {
	now := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	secrets := []store.StoredSecret{{Value: "s0"}}
	for i := 1; i <= maxSigningSecrets+10; i++ {
		now = now.Add(time.Second)
		secrets = rotated(secrets, fmt.Sprintf("s%d", i), now, 24*time.Hour)
		if want := min(i+1, maxSigningSecrets); len(secrets) != want {
			t.Fatalf("after %d rotations: %d secrets, want %d", i, len(secrets), want)
		}
		if secrets[0].Value != fmt.Sprintf("s%d", i) || !secrets[0].ExpiresAt.IsZero() {
			t.Fatalf("after %d rotations the newest is %+v", i, secrets[0])
		}
		if last := secrets[len(secrets)-1]; i >= maxSigningSecrets && last.Value != fmt.Sprintf("s%d", i-maxSigningSecrets+1) {
			t.Fatalf("after %d rotations the oldest kept is %s", i, last.Value)
		}
	}
	// Past the overlap only the newest is left.
	later := rotated(secrets, "fresh", now.Add(25*time.Hour), 24*time.Hour)
	if len(later) != 2 || later[0].Value != "fresh" || later[1].Value != secrets[0].Value {
		t.Errorf("past the overlap: %+v", later)
	}
}
