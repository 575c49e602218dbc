package config

import (
	"slices"
	"testing"
	"time"
)

// TestRestartKeys: only the keys a running process cannot apply are
// reported, by their path in the file.
func TestRestartKeys(t *testing.T) {
	base := Default()
	base.APIToken = "a"
	next := base
	next.APIToken = "b"
	next.Log.Level = "debug"
	next.Storage.Retention = time.Hour
	next.MemoryLimitBytes = 1 << 30
	if got := RestartKeys(&base, &next); len(got) != 0 {
		t.Errorf("live keys reported as needing a restart: %v", got)
	}
	next.Listen = "127.0.0.1:9999"
	next.Storage.Path = "/elsewhere"
	next.Storage.InMemory = true
	next.Log.Format = "text"
	next.Delivery.ShutdownGrace = time.Minute
	next.Delivery.RotationOverlap = time.Hour
	want := []string{"listen", "storage.path", "storage.in_memory", "log.format", "delivery.shutdown_grace", "delivery.rotation_overlap"}
	if got := RestartKeys(&base, &next); !slices.Equal(got, want) {
		t.Errorf("RestartKeys = %v, want %v", got, want)
	}
}
