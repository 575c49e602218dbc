package config

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	goccy "github.com/goccy/go-yaml"
)

// SyntaxError is a config file that is not valid YAML, at the place the
// problem is: the line and column (1-based; 0 when unknown) of the token
// where parsing could not go on.
type SyntaxError struct {
	File   string // empty for a config not read from a file
	Line   int
	Column int
	Msg    string
}

// Error reads like a compiler's: "pollrelay.yaml:10:13: yaml: …".
func (e *SyntaxError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ":")
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line) + ":")
		if e.Column > 0 {
			b.WriteString(strconv.Itoa(e.Column) + ":")
		}
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	return b.String() + "yaml: " + e.Msg
}

// yamlv3Line reads the line out of the YAML parser's own messages:
// "yaml: line 5: …" or "yaml: unmarshal errors:\n  line 2: …".
var yamlv3Line = regexp.MustCompile(`line (\d+): (.*)`)

// syntaxError locates a YAML error. The parser koanf uses often reports
// the line where the enclosing construct began (a flow mapping opened five
// lines above an unclosed quote), and never a column; a second parser,
// which reports the token where it failed with its column, is asked too.
// Neither notices a problem before it is there, so the later of the two
// lines is the better one.
func syntaxError(data []byte, err error) *SyntaxError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	se := &SyntaxError{Msg: msg}
	if m := yamlv3Line.FindStringSubmatch(msg); m != nil {
		se.Line, _ = strconv.Atoi(m[1])
		se.Msg = m[2]
	}
	if line, col, gmsg, ok := goccyPosition(data); ok && line >= se.Line {
		return &SyntaxError{Line: line, Column: col, Msg: gmsg}
	}
	return se
}

// goccyPosition parses data with the second parser and returns where it
// failed. It only locates an error already found, so a panic in it is
// taken as "no position" rather than crash a reload.
func goccyPosition(data []byte) (line, col int, msg string, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	var v any
	var ye goccy.Error
	if err := goccy.Unmarshal(data, &v); err != nil && errors.As(err, &ye) {
		if tok := ye.GetToken(); tok != nil && tok.Position != nil {
			return tok.Position.Line, tok.Position.Column, ye.GetMessage(), true
		}
	}
	return 0, 0, "", false
}
