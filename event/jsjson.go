package event

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// JSCompact rewrites a JSON document into the form JavaScript's
// JSON.stringify(JSON.parse(doc)) produces, so a receiver that verifies a
// signature over the re-serialised body (as some vendors' samples do) gets
// the bytes that were signed. That form differs from Go's encoder in
// three ways this handles:
//
//   - object keys: array-index keys ("0", "7", "10") come first in numeric
//     order, then the other keys in the order they first appear; a repeated
//     key keeps its first position and its last value;
//   - strings: only '"', '\\' and control characters are escaped (lower-case
//     \u00xx); U+2028, U+2029, '<', '>' and '&' stay as they are, and a lone
//     UTF-16 surrogate escape stays escaped;
//   - numbers: the shortest form that reads back as the same double, laid
//     out as ECMAScript's Number::toString does (1e+21, 1.5e-7, 100, -0 → 0).
//
// The one exception: an integer literal beyond 2^53 keeps its digits, since
// JavaScript would round it and the value would no longer be the upstream's.
// Invalid UTF-8 becomes U+FFFD, so the result is always valid UTF-8 and
// reads the same in any decoder.
func JSCompact(doc []byte) ([]byte, error) {
	p := jsParser{in: doc, out: make([]byte, 0, len(doc))}
	p.skipSpace()
	if err := p.value(0); err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.in) {
		return nil, fmt.Errorf("js form: trailing data at offset %d", p.pos)
	}
	return p.out, nil
}

// maxJSDepth bounds nesting so a hostile document cannot exhaust the stack.
const maxJSDepth = 10000

// jsParser reads in and writes the JavaScript form to out as it goes; only
// an object whose keys need reordering or repeat a key is rewritten after
// it closes, so the common body costs one pass and no tree.
type jsParser struct {
	in  []byte
	pos int
	out []byte
}

// jsMember locates one object member in out: its key (quotes included)
// and its value.
type jsMember struct {
	keyStart, keyEnd, valEnd int
}

var errJSEnd = errors.New("js form: unexpected end of JSON")

func (p *jsParser) skipSpace() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsParser) value(depth int) error {
	if depth > maxJSDepth {
		return errors.New("js form: nested too deeply")
	}
	if p.pos >= len(p.in) {
		return errJSEnd
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return fmt.Errorf("js form: unexpected %q at offset %d", c, p.pos)
	}
}

func (p *jsParser) literal(word string) error {
	if !bytes.HasPrefix(p.in[p.pos:], []byte(word)) {
		return fmt.Errorf("js form: bad literal at offset %d", p.pos)
	}
	p.pos += len(word)
	p.out = append(p.out, word...)
	return nil
}

func (p *jsParser) array(depth int) error {
	p.pos++ // [
	p.out = append(p.out, '[')
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		p.out = append(p.out, ']')
		return nil
	}
	for {
		p.skipSpace()
		if err := p.value(depth + 1); err != nil {
			return err
		}
		if done, err := p.after(']'); done || err != nil {
			if err == nil {
				p.out = append(p.out, ']')
			}
			return err
		}
	}
}

// after reads what follows a member: a comma (written; done false) or
// the closing byte (read, not written; done true).
func (p *jsParser) after(closing byte) (done bool, err error) {
	p.skipSpace()
	if p.pos >= len(p.in) {
		return false, errJSEnd
	}
	switch p.in[p.pos] {
	case ',':
		p.pos++
		p.out = append(p.out, ',')
		return false, nil
	case closing:
		p.pos++
		return true, nil
	default:
		return false, fmt.Errorf("js form: expected , or %c at offset %d", closing, p.pos)
	}
}

func (p *jsParser) object(depth int) error {
	p.pos++ // {
	start := len(p.out)
	p.out = append(p.out, '{')
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		p.out = append(p.out, '}')
		return nil
	}
	var buf [8]jsMember
	members := buf[:0]
	reorder := false
	var seen keySet
	for {
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return fmt.Errorf("js form: expected a key at offset %d", p.pos)
		}
		m := jsMember{keyStart: len(p.out)}
		if err := p.str(); err != nil {
			return err
		}
		m.keyEnd = len(p.out)
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return fmt.Errorf("js form: expected : at offset %d", p.pos)
		}
		p.pos++
		p.out = append(p.out, ':')
		p.skipSpace()
		if err := p.value(depth + 1); err != nil {
			return err
		}
		m.valEnd = len(p.out)
		if !reorder {
			key := p.out[m.keyStart:m.keyEnd]
			_, idx := arrayIndex(key)
			reorder = idx || seen.repeats(p.out, members, key)
		}
		members = append(members, m)
		done, err := p.after('}')
		if err != nil {
			return err
		}
		if done {
			if reorder {
				p.rewrite(start, members)
			}
			p.out = append(p.out, '}')
			return nil
		}
	}
}

// keySet tells whether an object repeats a key: by a scan while the object
// is small, by a map once it is large enough for the scan to cost more.
type keySet map[string]struct{}

func (s *keySet) repeats(out []byte, members []jsMember, key []byte) bool {
	if *s == nil && len(members) < 32 {
		for _, o := range members {
			if bytes.Equal(out[o.keyStart:o.keyEnd], key) {
				return true
			}
		}
		return false
	}
	if *s == nil {
		*s = make(keySet, 2*len(members))
		for _, o := range members {
			(*s)[string(out[o.keyStart:o.keyEnd])] = struct{}{}
		}
	}
	if _, ok := (*s)[string(key)]; ok {
		return true
	}
	(*s)[string(key)] = struct{}{}
	return false
}

// rewrite lays the object that starts at out[start] out again in
// JavaScript's property order: array-index keys ascending, then the others
// as they first appeared, each with the last value given for it (what
// JSON.parse keeps).
func (p *jsParser) rewrite(start int, members []jsMember) {
	type entry struct {
		idx        uint64
		isIdx      bool
		key, value []byte
	}
	body := append([]byte(nil), p.out[start:]...)
	at := func(off int) int { return off - start }
	var entries []entry
	pos := map[string]int{}
	for _, m := range members {
		key := body[at(m.keyStart):at(m.keyEnd)]
		value := body[at(m.keyEnd)+1 : at(m.valEnd)] // after ':'
		if i, dup := pos[string(key)]; dup {
			entries[i].value = value
			continue
		}
		n, isIdx := arrayIndex(key)
		pos[string(key)] = len(entries)
		entries = append(entries, entry{n, isIdx, key, value})
	}
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.isIdx != b.isIdx {
			return a.isIdx
		}
		return a.isIdx && a.idx < b.idx
	})
	p.out = append(p.out[:start], '{')
	for i, e := range entries {
		if i > 0 {
			p.out = append(p.out, ',')
		}
		p.out = append(p.out, e.key...)
		p.out = append(p.out, ':')
		p.out = append(p.out, e.value...)
	}
}

// arrayIndex reports whether an encoded key is a canonical array index:
// the decimal form of an integer from 0 to 2^32-2 with no leading zero.
func arrayIndex(encoded []byte) (uint64, bool) {
	s := encoded[1 : len(encoded)-1]
	if len(s) == 0 || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var n uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n <= math.MaxUint32-1
}

// str reads a string and writes it the way JSON.stringify does.
func (p *jsParser) str() error {
	start := p.pos
	p.pos++ // "
	p.out = append(p.out, '"')
	for {
		run := p.pos
		for p.pos < len(p.in) {
			c := p.in[p.pos]
			if c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
				break
			}
			p.pos++
		}
		p.out = append(p.out, p.in[run:p.pos]...)
		if p.pos >= len(p.in) {
			return errJSEnd
		}
		c := p.in[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.out = append(p.out, '"')
			return nil
		case c == '\\':
			if err := p.escape(); err != nil {
				return err
			}
		case c < 0x20:
			return fmt.Errorf("js form: control character in string at offset %d", start)
		default:
			r, size := utf8.DecodeRune(p.in[p.pos:])
			p.out = utf8.AppendRune(p.out, r) // RuneError for invalid bytes: U+FFFD
			p.pos += size
		}
	}
}

// escape reads one backslash escape, pairing UTF-16 surrogates.
func (p *jsParser) escape() error {
	if p.pos+1 >= len(p.in) {
		return errJSEnd
	}
	c := p.in[p.pos+1]
	p.pos += 2
	var r rune
	switch {
	case c == 'u':
		u, err := p.hex4()
		if err != nil {
			return err
		}
		r = p.pairSurrogate(u)
	case c < utf8.RuneSelf && unescape[c] != 0:
		r = rune(unescape[c])
	default:
		return fmt.Errorf("js form: bad escape \\%c at offset %d", c, p.pos-2)
	}
	p.out = appendJSUnit(p.out, r)
	return nil
}

// pairSurrogate joins a high surrogate with the low one escaped right
// after it; a lone half is returned as it is.
func (p *jsParser) pairSurrogate(u rune) rune {
	if u < 0xd800 || u >= 0xdc00 || p.pos+6 > len(p.in) || p.in[p.pos] != '\\' || p.in[p.pos+1] != 'u' {
		return u
	}
	save := p.pos
	p.pos += 2
	if lo, err := p.hex4(); err == nil && lo >= 0xdc00 && lo <= 0xdfff {
		return utf16.DecodeRune(u, lo)
	}
	p.pos = save
	return u
}

func (p *jsParser) hex4() (rune, error) {
	if p.pos+4 > len(p.in) {
		return 0, errJSEnd
	}
	n, err := strconv.ParseUint(string(p.in[p.pos:p.pos+4]), 16, 16)
	if err != nil {
		return 0, fmt.Errorf("js form: bad \\u escape at offset %d", p.pos-2)
	}
	p.pos += 4
	return rune(n), nil
}

// appendJSUnit writes one character as JSON.stringify does (QuoteJSONString
// in ECMA-262): short escapes, \u00xx for other controls, a lone surrogate
// as \udxxx, everything else as itself.
func appendJSUnit(out []byte, r rune) []byte {
	if r < utf8.RuneSelf {
		if c := shortEscape[r]; c != 0 {
			return append(out, '\\', c)
		}
	}
	if r < 0x20 || utf16.IsSurrogate(r) {
		return fmt.Appendf(out, `\u%04x`, r)
	}
	return utf8.AppendRune(out, r)
}

// shortEscape is the letter JSON.stringify escapes a character with, and
// unescape its reverse (plus '/', which JSON lets input escape).
var shortEscape, unescape = func() (esc, unesc [128]byte) {
	for c, letter := range map[byte]byte{'"': '"', '\\': '\\', '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't'} {
		esc[c], unesc[letter] = letter, c
	}
	unesc['/'] = '/'
	return esc, unesc
}()

// number reads a number and writes it as Number::toString would.
func (p *jsParser) number() error {
	start := p.pos
	integer := true
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		if c == '.' || c == 'e' || c == 'E' {
			integer = false
		} else if !(c == '-' || c == '+' || (c >= '0' && c <= '9')) {
			break
		}
		p.pos++
	}
	lit := string(p.in[start:p.pos]) // short: numbers are rarely long
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("js form: bad number %q at offset %d", lit, start)
	}
	if integer && (math.Abs(f) >= 1<<53 || (lit != "-0" && len(lit) < 16)) {
		// A short integer is already in JavaScript's form; a long one
		// is the documented exception (JavaScript would round it).
		p.out = append(p.out, lit...)
		return nil
	}
	p.out = append(p.out, jsNumber(f)...)
	return nil
}

// jsNumber lays out f as ECMAScript's Number::toString(10).
func jsNumber(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "null" // JSON.stringify of a number JSON.parse overflowed
	}
	if f == 0 {
		return "0"
	}
	neg := f < 0
	sci := strconv.FormatFloat(math.Abs(f), 'e', -1, 64) // d.ddde±x
	mant, expStr, _ := strings.Cut(sci, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, _ := strconv.Atoi(expStr)
	k, n := len(digits), exp+1
	var s string
	switch {
	case k <= n && n <= 21:
		s = digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		s = digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		s = "0." + strings.Repeat("0", -n) + digits
	default:
		sign := "+"
		if n-1 < 0 {
			sign = "-"
		}
		e := n - 1
		if e < 0 {
			e = -e
		}
		if k == 1 {
			s = digits + "e" + sign + strconv.Itoa(e)
		} else {
			s = digits[:1] + "." + digits[1:] + "e" + sign + strconv.Itoa(e)
		}
	}
	if neg {
		return "-" + s
	}
	return s
}
