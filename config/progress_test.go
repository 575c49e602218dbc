package config

import (
	"strings"
	"testing"
)

// progress: and eta: steer the adaptive schedule of a watch source, and
// nothing else.
func TestProgressAndETA(t *testing.T) {
	c := mustParse(t, "sources:\n  - {name: w, url: 'http://127.0.0.1/{id}', terminal: [done], interval: adaptive, progress: .progress, eta: .eta}\n", noEnv)
	if s := c.Sources[0]; s.Progress != ".progress" || s.ETA != ".eta" {
		t.Errorf("source = %+v", s)
	}
	for tail, want := range map[string]string{
		"interval: 15s, progress: .progress}":   "sources[0].progress: only valid with interval: adaptive (on a watch source)",
		"interval: 15s, eta: .eta}":             "sources[0].eta: only valid with interval: adaptive (on a watch source)",
		"interval: adaptive, progress: '.p |'}": "sources[0].progress: ",
	} {
		_, err := ParseWith([]byte("sources:\n  - {name: w, url: 'http://127.0.0.1/{id}', terminal: [done], "+tail+"\n"), noEnv)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", tail, err, want)
		}
	}
}
