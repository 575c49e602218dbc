package harness

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// ReadmeWalkthrough returns the YAML of the README's "A minimal config,
// walked through", so a test runs what the docs show.
func ReadmeWalkthrough(t testing.TB, readme string) string {
	t.Helper()
	raw, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "## A minimal config, walked through")
	if !ok {
		t.Fatal(`README.md lost its "A minimal config, walked through" section`)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("no yaml block in the README's walkthrough")
	}
	return m[1]
}
