package poller

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// The fast path reads JSON text in place with the few functions below.
// They only find where values begin and end; whether the text is JSON at
// all is encoding/json's scanner's decision (fastExtract runs it beside
// them), so on any text they must merely stop — report false — never
// loop, recurse per level or index out of range.

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at s[i]
// (a quote), or -1 if it does not end.
func skipString(s string, i int) int {
	for j := i + 1; j < len(s); {
		k := strings.IndexAny(s[j:], `"\`)
		if k < 0 {
			return -1
		}
		j += k
		if s[j] == '"' {
			return j + 1
		}
		j += 2 // an escape and the byte it escapes
	}
	return -1
}

// skipValue returns the index just past the value starting at s[i], or -1.
// Nesting is counted, not recursed into.
func skipValue(s string, i int) int {
	if i >= len(s) {
		return -1
	}
	switch s[i] {
	case '"':
		return skipString(s, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				e := skipString(s, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	case ',', ':', '}', ']':
		return -1
	}
	j := i
	for j < len(s) && !strings.ContainsRune(",:}] \t\r\n\"{[", rune(s[j])) {
		j++
	}
	return j
}

// members returns the raw values of keys a and b in the object obj, as
// encoding/json decodes an object: the last occurrence of a duplicated
// key wins, and keys compare as decoded ("st\u0061tus" is "status").
// A key not present yields "", as does an empty key; ok is false when obj
// is not an object.
func members(obj, a, b string) (va, vb string, ok bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return "", "", false
	}
	if i = skipSpace(obj, i+1); i < len(obj) && obj[i] == '}' {
		return "", "", true
	}
	for i < len(obj) && obj[i] == '"' {
		ke := skipString(obj, i)
		if ke < 0 {
			break
		}
		key := obj[i:ke]
		if i = skipSpace(obj, ke); i >= len(obj) || obj[i] != ':' {
			break
		}
		i = skipSpace(obj, i+1)
		ve := skipValue(obj, i)
		if ve < 0 {
			break
		}
		if a != "" && keyIs(key, a) {
			va = obj[i:ve]
		}
		if b != "" && keyIs(key, b) {
			vb = obj[i:ve]
		}
		if i = skipSpace(obj, ve); i >= len(obj) {
			break
		}
		if obj[i] == '}' {
			return va, vb, true
		}
		if obj[i] != ',' {
			break
		}
		i = skipSpace(obj, i+1)
	}
	return "", "", false
}

// keyIs reports whether the raw JSON string raw decodes to key, as
// encoding/json decodes it (escapes resolved, invalid UTF-8 replaced).
func keyIs(raw, key string) bool {
	if len(raw) < 2 {
		return false
	}
	inner := raw[1 : len(raw)-1]
	if strings.IndexByte(inner, '\\') < 0 && utf8.ValidString(inner) {
		return inner == key
	}
	var k string
	return json.Unmarshal([]byte(raw), &k) == nil && k == key
}

// elements calls fn with each element of the array arr, as raw text,
// until fn returns false. It reports false when arr is not an array or fn
// stopped.
func elements(arr string, fn func(raw string) bool) bool {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return false
	}
	if i = skipSpace(arr, i+1); i < len(arr) && arr[i] == ']' {
		return true
	}
	for {
		e := skipValue(arr, i)
		if e < 0 || !fn(arr[i:e]) {
			return false
		}
		if i = skipSpace(arr, e); i >= len(arr) {
			return false
		}
		switch arr[i] {
		case ']':
			return true
		case ',':
			i = skipSpace(arr, i+1)
		default:
			return false
		}
	}
}
