package glob

import (
	"path"
	"testing"
)

func TestGlobsIntersect(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"video.status.*", "video.status.*", true},
		{"video.*", "video.status.*", true},
		{"video.stauts.*", "video.status.*", false},
		{"*.ready", "video.status.*", true},
		{"video.status.ready", "video.status.*", true},
		{"video.?tatus.*", "video.status.*", true},
		{"video.[st]tatus.x", "video.*.x", true},
		{"video.[^s]tatus.x", "video.status.x", false},
		{"task.*", "video.*", false},
		{"*", "anything", true},
		{"a*b*c", "*x*", true},
		{"abc", "abd", false},
		{`lit\*`, "lit*", true},
		{`lit\*`, `lit\*`, true},
	}
	for _, c := range cases {
		if got := Intersect(c.a, c.b); got != c.want {
			t.Errorf("Intersect(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := Intersect(c.b, c.a); got != c.want {
			t.Errorf("Intersect(%q, %q) = %v, want %v", c.b, c.a, got, c.want)
		}
	}
}

// TestGlobsIntersectAgainstBruteForce compares Intersect with a
// search for a common string, over every pair of short globs: a string
// both match, if any, is never longer than the two globs together.
func TestGlobsIntersectAgainstBruteForce(t *testing.T) {
	tokens := []string{"a", "b", "*", "?", "[ab]", "[^a]"}
	var globs []string
	var grow func(prefix string, n int)
	grow = func(prefix string, n int) {
		if prefix != "" {
			globs = append(globs, prefix)
		}
		if n == 0 {
			return
		}
		for _, tk := range tokens {
			grow(prefix+tk, n-1)
		}
	}
	grow("", 3)
	var strs []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		strs = append(strs, prefix)
		if n == 0 {
			return
		}
		for _, c := range []string{"a", "b", "c"} {
			gen(prefix+c, n-1)
		}
	}
	gen("", 6)
	// Each glob's matches as a bit set over strs, so a pair is one AND.
	matches := make(map[string][]uint64, len(globs))
	for _, g := range globs {
		m := make([]uint64, (len(strs)+63)/64)
		for i, s := range strs {
			if ok, _ := path.Match(g, s); ok {
				m[i/64] |= 1 << (i % 64)
			}
		}
		matches[g] = m
	}
	for _, a := range globs {
		for _, b := range globs {
			want := false
			for w := range matches[a] {
				if matches[a][w]&matches[b][w] != 0 {
					want = true
					break
				}
			}
			if got := Intersect(a, b); got != want {
				t.Fatalf("Intersect(%q, %q) = %v, a common string exists: %v", a, b, got, want)
			}
		}
	}
}
