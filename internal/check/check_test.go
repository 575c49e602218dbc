package check

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"15s": 15 * time.Second, "7d": 168 * time.Hour, "1d12h": 36 * time.Hour, " 2h30m ": 150 * time.Minute,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "15", "d", "1.5d", "-1d", "99999999999d", "106751d23h47m17s"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
	for d, want := range map[time.Duration]string{
		15 * time.Second: "15s", time.Minute: "1m", time.Hour: "1h", 90 * time.Minute: "1h30m", 1500 * time.Millisecond: "1.5s",
	} {
		if got := FmtDuration(d); got != want {
			t.Errorf("FmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestProblemOrder(t *testing.T) {
	in := []string{
		"sources[10].name: x", "sources[2].name: x", "sources[2]: x", "listen: x", "sources[2].a.b: x",
	}
	p := &Problems{}
	for _, l := range in {
		path, msg, _ := strings.Cut(l, ": ")
		p.Add(path, "%s", msg)
	}
	var ve *ValidationError
	if !errors.As(p.Err(), &ve) {
		t.Fatalf("Err() = %v, want a *ValidationError", p.Err())
	}
	want := []string{"listen: x", "sources[2]: x", "sources[2].a.b: x", "sources[2].name: x", "sources[10].name: x"}
	if !slices.Equal(ve.Problems, want) {
		t.Errorf("order = %q, want %q", ve.Problems, want)
	}
}

// TestBadPathsSilenceLaterProblems: once a value failed to decode, checks
// of it or anything under it would only repeat that, and are dropped.
func TestBadPathsSilenceLaterProblems(t *testing.T) {
	p := &Problems{}
	p.Bad("retry.schedule[1]", "must be a duration string")
	p.Add("retry.schedule[1]", "must be more than 0")
	p.Add("retry.schedule[10]", "must be more than 0")
	p.Add("retry", "x")
	if p.Len() != 3 || !p.HasUnder("retry.schedule") || p.HasUnder("timeout") {
		t.Errorf("problems %v", p.Err())
	}
}
