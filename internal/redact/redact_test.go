package redact

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// Every form a secret travels or is shown in is cut, inside any text.
func TestSetCutsEveryForm(t *testing.T) {
	const user, pass, token = "alice", `s3cr/t+"pw"`, "tok_ab/cd+ef=="
	s := &Set{}
	s.AddBasic(user, pass)
	s.AddHeader("Bearer " + token)
	pair := user + ":" + pass
	jsonInner := func(v string) string { j, _ := json.Marshal(v); return string(j[1 : len(j)-1]) }
	quoteInner := func(v string) string { q := strconv.Quote(v); return q[1 : len(q)-1] }
	forms := map[string]string{
		"password":                  pass,
		"password, query-escaped":   url.QueryEscape(pass),
		"password, path-escaped":    url.PathEscape(pass),
		"password, lower-case hex":  strings.ToLower(url.QueryEscape(pass)),
		"password, JSON":            jsonInner(pass),
		"password, JSON slashes":    strings.ReplaceAll(jsonInner(pass), "/", `\/`),
		"password, Go-quoted":       quoteInner(pass),
		"password, JSON Go-quoted":  quoteInner(jsonInner(pass)),
		"user:pass, base64":         base64.StdEncoding.EncodeToString([]byte(pair)),
		"user:pass, base64url":      base64.URLEncoding.EncodeToString([]byte(pair)),
		"user:pass, raw base64":     base64.RawStdEncoding.EncodeToString([]byte(pair)),
		"user:pass, raw base64url":  base64.RawURLEncoding.EncodeToString([]byte(pair)),
		"header":                    "Bearer " + token,
		"token":                     token,
		"token, query-escaped":      url.QueryEscape(token),
		"token, JSON slashes":       strings.ReplaceAll(token, "/", `\/`),
		"token, base64":             base64.StdEncoding.EncodeToString([]byte(token)),
		"base64 header, Go-quoted":  quoteInner(base64.StdEncoding.EncodeToString([]byte(pair))),
		"password, query then JSON": jsonInner(url.QueryEscape(pass)),
	}
	for name, f := range forms {
		got := s.String("before " + f + " after")
		if strings.Contains(got, f) || !strings.Contains(got, Mark) {
			t.Errorf("%s: %q left %q", name, f, got)
		}
	}
}

// A Basic header set by hand is cut together with what it decodes to.
func TestAddHeaderDecodesBasic(t *testing.T) {
	s := &Set{}
	s.AddHeader("Basic " + base64.StdEncoding.EncodeToString([]byte("bob:hunter22")))
	for _, f := range []string{"hunter22", base64.URLEncoding.EncodeToString([]byte("bob:hunter22"))} {
		if got := s.String("x " + f); strings.Contains(got, f) {
			t.Errorf("%q left in %q", f, got)
		}
	}
}

// Short values are not secrets worth cutting words for, and nil holds none.
func TestShortAndNil(t *testing.T) {
	s := &Set{}
	s.Add("abc", "")
	if got := s.String("abc def"); got != "abc def" {
		t.Errorf("cut a 3-byte value: %q", got)
	}
	var n *Set
	if n.String("x") != "x" || n.Longest() != 0 {
		t.Error("nil set changed text")
	}
}

func TestURL(t *testing.T) {
	got := URL("https://u:p%40ss@api.example.com/v1?api_key=k3y&x=1")
	if strings.Contains(got, "p%40ss") || strings.Contains(got, "k3y") || strings.Contains(got, "u:") {
		t.Errorf("URL = %q", got)
	}
	if got := Userinfo("https://u:pw@h/x"); got != "https://u:redacted@h/x" {
		t.Errorf("Userinfo = %q", got)
	}
	h := Headers(map[string]string{"Authorization": "Bearer x", "X-Api-Key": "k", "Accept": "json"})
	if h["Authorization"] != "redacted" || h["X-Api-Key"] != "redacted" || h["Accept"] != "json" {
		t.Errorf("Headers = %v", h)
	}
}

// What a shortened quote left of a secret, right before its cut marker,
// is cut; text elsewhere is left alone.
func TestTruncated(t *testing.T) {
	s := &Set{}
	s.Add("abcdefghijkl")
	cases := map[string]string{
		`x: "zzzabcdefg"… more`:   `x: "zzz` + Mark + `"… more`,
		`x: "zzzabc"… more`:       `x: "zzzabc"… more`, // 3 bytes: not a secret's start worth cutting
		`x: "abcdefg" no cut`:     `x: "abcdefg" no cut`,
		`"abcd"… and "abcde"…`:    `"` + Mark + `"… and "` + Mark + `"…`,
		`no marker abcdefghijk`:   `no marker abcdefghijk`,
		`"zzzabcdefghijk"… again`: `"zzz` + Mark + `"… again`,
	}
	for in, want := range cases {
		if got := s.Truncated(in, `"…`); got != want {
			t.Errorf("Truncated(%q) = %q, want %q", in, got, want)
		}
	}
}

// AddURL takes a URL's query values and user info, in the forms they
// travel in.
func TestAddURL(t *testing.T) {
	s := &Set{}
	s.AddURL("https://alice:pw-4d5e6f@api.test/v1?api_key=key-7a8b9c&page=2")
	basic := base64.StdEncoding.EncodeToString([]byte("alice:pw-4d5e6f"))
	got := s.String("pw-4d5e6f key-7a8b9c " + basic + " page=2")
	if want := Mark + " " + Mark + " " + Mark + " page=2"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	s.AddURL("%zz not a URL") // adds nothing, and does not fail
}

// Head cuts a secret that straddles the cut whole, from only as much
// text as the cut needs.
func TestHead(t *testing.T) {
	s := &Set{}
	s.Add("secret-0a1b2c3d")
	body := []byte(strings.Repeat("x", 8) + "secret-0a1b2c3d" + strings.Repeat("y", 100))
	got := s.Head(body, 10)
	if strings.Contains(got, "secret") || !strings.HasPrefix(got, strings.Repeat("x", 8)+Mark) {
		t.Errorf("Head = %q", got)
	}
	if len(got) > 10+s.Longest() {
		t.Errorf("Head kept %d bytes of a text cut at 10", len(got))
	}
	if got := (*Set)(nil).Head([]byte("plain"), 3); got != "plain"[:3] {
		t.Errorf("nil set: %q", got)
	}
}
