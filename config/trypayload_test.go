package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadTriesPayloads: a file's payload programs run on sample events
// under the jq limits; one that runs away, or fails on every sample, is a
// problem at its path, and one that only reads a field the samples lack is
// accepted.
func TestLoadTriesPayloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := `
sources: [{name: a, url: 'http://x/a'}]
subscriptions:
  - {name: bomb, url: 'http://127.0.0.1:9/', secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, payload: 'def f: [f]; f'}
  - {name: spin, url: 'http://127.0.0.1:9/', secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, payload: '[limit(1e9; repeat(.))] | length'}
  - {name: broken, url: 'http://127.0.0.1:9/', secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, payload: '.type | ascii_downcase | error'}
  - {name: vendor, url: 'http://127.0.0.1:9/', secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, payload: '{event: .type, name: (.data.object.status | ascii_downcase)}'}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	got := problemsOf(t, err)
	if len(got) != 3 {
		t.Fatalf("problems %q, want three", got)
	}
	for i, want := range []string{
		`subscriptions[0].payload: jq "def f: [f]; f": `,
		`subscriptions[1].payload: jq "[limit(1e9; repeat(.))] | length": `,
		`subscriptions[2].payload: fails on every sample event: jq ".type | ascii_downcase | error": error: videos.status.ready`,
	} {
		if !strings.HasPrefix(got[i], want) {
			t.Errorf("problem %q, want it to start %q", got[i], want)
		}
	}
	for _, p := range got[:2] {
		if !strings.Contains(p, "limit") || !strings.HasSuffix(p, "(tried on a sample event)") {
			t.Errorf("problem %q does not say which limit, on what", p)
		}
	}
}
