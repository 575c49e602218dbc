package ui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func serve(c *Console, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, r)
	return rec
}

func TestConsoleIsOffWithoutToken(t *testing.T) {
	c := New(Options{})
	rec := serve(c, httptest.NewRequest("GET", "/ui/", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "set api_token") {
		t.Errorf("without api_token: %d %q", rec.Code, rec.Body.String())
	}
}

// TestSessionCookie: only the token's MAC over an unexpired expiry is a
// session; a changed expiry, a cookie from another token or an old one
// sends the browser to sign in again.
func TestSessionCookie(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New(Options{Token: "tok", Now: func() time.Time { return now }})
	login := func(token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/ui/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return serve(c, r)
	}
	if rec := login("nope"); rec.Code != http.StatusUnauthorized || rec.Header().Get("Set-Cookie") != "" {
		t.Fatalf("wrong token: %d, Set-Cookie %q", rec.Code, rec.Header().Get("Set-Cookie"))
	}
	rec := login("tok")
	cks := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || len(cks) != 1 || !cks[0].HttpOnly || cks[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign in: %d %+v", rec.Code, cks)
	}
	good := cks[0].Value
	exp, mac, _ := strings.Cut(good, ".")
	other := New(Options{Token: "other", Now: c.opts.Now}).newSession()
	cases := map[string]bool{
		good:                  true,
		"9" + exp + "." + mac: false,
		exp + "." + mac[1:]:   false,
		other:                 false,
		"":                    false,
		"garbage":             false,
	}
	for v, want := range cases {
		r := httptest.NewRequest("GET", "/ui/login", nil)
		r.AddCookie(&http.Cookie{Name: cookieName, Value: v})
		if got := c.session(r) != ""; got != want {
			t.Errorf("cookie %q: session %v, want %v", v, got, want)
		}
	}
	now = now.Add(sessionTTL)
	r := httptest.NewRequest("GET", "/ui/events", nil)
	r.AddCookie(&http.Cookie{Name: cookieName, Value: good})
	if rec := serve(c, r); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/ui/login" {
		t.Errorf("an expired session: %d %q", rec.Code, rec.Header().Get("Location"))
	}
}

// TestBackStaysInTheConsole: the redirect after an action goes only to a
// console page, whatever the form says.
func TestBackStaysInTheConsole(t *testing.T) {
	for to, want := range map[string]string{
		"/ui/dead":              "/ui/dead?msg=m",
		"/ui/event?id=evt_1":    "/ui/event?id=evt_1&msg=m",
		"https://evil.example/": "/ui/?msg=m",
		"//evil.example/ui/":    "/ui/?msg=m",
		"/\\evil.example":       "/ui/?msg=m",
		"/v1/events":            "/ui/?msg=m",
	} {
		rec := httptest.NewRecorder()
		back(rec, httptest.NewRequest("POST", "/ui/redeliver", nil), to, "m")
		if got := rec.Header().Get("Location"); got != want {
			t.Errorf("back to %q: %q, want %q", to, got, want)
		}
	}
}

func TestHeadersAndAssets(t *testing.T) {
	c := New(Options{Token: "tok"})
	rec := serve(c, httptest.NewRequest("GET", "/ui/static/style.css", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/css") {
		t.Errorf("style.css: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	rec = serve(c, httptest.NewRequest("GET", "/ui/login", nil))
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(rec.Body.String(), "<script") || strings.Contains(rec.Body.String(), "http://") || strings.Contains(rec.Body.String(), "https://") {
		t.Errorf("the sign-in page loads something from elsewhere or runs script:\n%s", rec.Body.String())
	}
}

// TestSetToken: a reloaded token ends the sessions of the old one, and an
// empty one turns the console off.
func TestSetToken(t *testing.T) {
	c := New(Options{Token: "old"})
	r := httptest.NewRequest("GET", "/ui/login", nil)
	r.AddCookie(&http.Cookie{Name: cookieName, Value: c.newSession()})
	if c.session(r) == "" {
		t.Fatal("a fresh session is refused")
	}
	c.SetToken("new")
	if c.session(r) != "" {
		t.Error("a session of the old token still works")
	}
	c.SetToken("")
	if rec := serve(c, httptest.NewRequest("GET", "/ui/login", nil)); rec.Code != http.StatusNotFound {
		t.Errorf("with the token removed: %d", rec.Code)
	}
}
