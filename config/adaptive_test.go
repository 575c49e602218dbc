package config

import (
	"testing"
	"time"
)

// TestAdaptiveInterval checks that `interval: adaptive` parses into
// Adaptive with its bounds defaulted, and that the fallback interval is
// kept inside the bounds.
func TestAdaptiveInterval(t *testing.T) {
	for _, tc := range []struct {
		name, extra        string
		interval, min, max time.Duration
	}{
		{"defaults", "", 15 * time.Second, time.Second, 10 * time.Minute},
		{"bounds", "min_interval: 30s\n    max_interval: 1h\n", 30 * time.Second, 30 * time.Second, time.Hour},
		{"min above default max", "min_interval: 20m\n", 20 * time.Minute, 20 * time.Minute, 20 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, `
sources:
  - name: status
    url: http://127.0.0.1:9000/tasks/{id}
    interval: adaptive
    `+tc.extra, noEnv)
			s := c.Sources[0]
			if !s.Adaptive() || s.Interval != tc.interval || s.MinInterval != tc.min || s.MaxInterval != tc.max {
				t.Errorf("got adaptive=%v interval=%v min=%v max=%v, want true %v %v %v",
					s.Adaptive(), s.Interval, s.MinInterval, s.MaxInterval, tc.interval, tc.min, tc.max)
			}
		})
	}
	c := mustParse(t, "sources:\n  - name: s\n    url: http://127.0.0.1:9000/tasks/{id}\n    interval: 20s\n", noEnv)
	if c.Sources[0].Adaptive() {
		t.Error("interval: 20s parsed as adaptive")
	}
}
