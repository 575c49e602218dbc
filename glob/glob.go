// Package glob is the one glob syntax pollrelay reads, path.Match's (*, ?,
// [classes], \ escapes): subscriptions' event types, replay and API type
// filters, and string states in rules.
package glob

import (
	"path"
	"strings"
)

// Valid reports whether g is a well-formed glob.
func Valid(g string) bool {
	_, err := path.Match(g, "")
	return err == nil
}

// Match reports whether s matches the glob g; a malformed glob matches
// nothing.
func Match(g, s string) bool {
	ok, _ := path.Match(g, s)
	return ok
}

// MatchAny reports whether s matches one of globs; no globs match
// everything.
func MatchAny(globs []string, s string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if Match(g, s) {
			return true
		}
	}
	return false
}

// Escape quotes the glob metacharacters of literal text (braces, which
// are not glob syntax, stay as they are).
func Escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(s)
}

// Intersect reports whether some string matches both globs. Each glob is
// a list of tokens: `*`, or a pattern for one character (a literal, `?` or
// a class), tested with Match itself so the two cannot disagree on
// classes.
func Intersect(a, b string) bool {
	ta, tb := tokens(a), tokens(b)
	memo := map[[2]int]bool{}
	var meet func(i, j int) bool
	meet = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := memo[key]; ok {
			return v
		}
		memo[key] = false
		var ok bool
		switch {
		case i == len(ta) && j == len(tb):
			ok = true
		case i < len(ta) && ta[i] == "*":
			ok = meet(i+1, j) || (j < len(tb) && meet(i, j+1))
		case j < len(tb) && tb[j] == "*":
			ok = meet(i, j+1) || (i < len(ta) && meet(i+1, j))
		case i < len(ta) && j < len(tb):
			ok = sameChar(ta[i], tb[j]) && meet(i+1, j+1)
		}
		memo[key] = ok
		return ok
	}
	return meet(0, 0)
}

// sameChar reports whether one character matches both one-character
// patterns, trying printable ASCII and the characters the patterns name.
func sameChar(a, b string) bool {
	try := func(r rune) bool {
		return Match(a, string(r)) && Match(b, string(r))
	}
	for r := rune(32); r < 127; r++ {
		if try(r) {
			return true
		}
	}
	for _, r := range a + b {
		if try(r) {
			return true
		}
	}
	return false
}

// tokens splits a glob into `*` and one-character patterns.
func tokens(g string) []string {
	var out []string
	for i := 0; i < len(g); {
		switch g[i] {
		case '*':
			if len(out) == 0 || out[len(out)-1] != "*" {
				out = append(out, "*")
			}
			i++
		case '[':
			end := strings.IndexByte(g[i+1:], ']')
			if end < 0 {
				out = append(out, `\[`)
				i++
				continue
			}
			out = append(out, g[i:i+end+2])
			i += end + 2
		case '\\':
			if i+1 < len(g) {
				out = append(out, g[i:i+2])
				i += 2
				continue
			}
			out = append(out, `\\`)
			i++
		default:
			r := []rune(g[i:])[0]
			out = append(out, string(r))
			i += len(string(r))
		}
	}
	return out
}
