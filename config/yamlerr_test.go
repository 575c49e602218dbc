package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyntaxErrorPosition checks that a YAML error names the file once and
// the line (and column) of the problem, not of the construct around it.
func TestSyntaxErrorPosition(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unclosed quote in a flow mapping opened earlier",
			"listen: x\nsources:\n  - name: a\n    url: http://x\n    headers: {\n      A: b,\n      C: d,\n      E: f,\n      G: h,\n      I: 'j,\n    }\n",
			"10:10: yaml: could not find end character of single-quoted text"},
		{"unclosed double quote",
			"sources:\n  - name: a\n    url: http://x\n    state: \"x\n    id: '.id'\n",
			"4:12: yaml: could not find end character of double-quoted text"},
		{"unclosed flow sequence",
			"a: [1, 2\nb: 3\n", "2:1: yaml: ',' or ']' must be specified"},
		{"tab indentation",
			"a:\n\t- 2\n", "2:1: yaml: found character '\t' that cannot start any token"},
		{"a value where a mapping continues",
			"a: 1\n  b: 2\n", "2: yaml: mapping values are not allowed in this context"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "e1.yaml")
			if err := os.WriteFile(path, []byte(c.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil {
				t.Fatal("no error")
			}
			if got, want := err.Error(), path+":"+c.want; got != want {
				t.Errorf("error\n got %q\nwant %q", got, want)
			}
			if n := strings.Count(err.Error(), "e1.yaml"); n != 1 {
				t.Errorf("the file name appears %d times", n)
			}
		})
	}
}
