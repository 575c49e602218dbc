// Package ui is pollrelay's console at /ui: server-rendered pages over the
// same store, poller and notifier as /v1, signed in with the api_token.
// Everything it serves is embedded; pages carry no script at all, so a
// strict Content-Security-Policy holds and html/template's escaping is the
// whole defence against what upstreams and receivers put in ids, states
// and answers.
package ui

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/notifier"
	"github.com/pollrelay/pollrelay/poller"
	"github.com/pollrelay/pollrelay/store"
)

// Poller is what the console needs of the polling side.
type Poller interface {
	PollNow(ctx context.Context, name string) error
	Status() []poller.Status
}

// Notifier is what the console needs of the delivery side.
type Notifier interface {
	Redeliver(ctx context.Context, eventID string) (int, error)
	Stats(subID string) (notifier.SubscriptionStats, bool)
}

// Options are the console's dependencies; /v1 passes its own.
type Options struct {
	Token    string // the api_token; SetToken changes it
	Store    store.Store
	Poller   Poller
	Notifier Notifier
	Config   func() *config.Config
	// Subscriptions lists every subscription id, config and API.
	Subscriptions func() ([]string, error)
	Gatherer      prometheus.Gatherer
	Logger        *slog.Logger
	Now           func() time.Time
}

// Console serves /ui.
type Console struct {
	opts    Options
	keys    atomic.Pointer[keys] // nil while the console is off
	pages   map[string]*template.Template
	mux     *http.ServeMux
	sampler *Sampler
}

//go:embed templates/*.html
var templates embed.FS

//go:embed static
var static embed.FS

const (
	cookieName = "pollrelay_ui"
	sessionTTL = 12 * time.Hour
)

// New builds the console. With an empty token it only says how to turn
// it on.
func New(o Options) *Console {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Console{opts: o, mux: http.NewServeMux(), pages: parsePages()}
	c.SetToken(o.Token)
	c.sampler = NewSampler(o.Gatherer, c.queueDepth, o.Now)
	st, _ := fs.Sub(static, "static")
	c.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(st)))
	c.mux.HandleFunc("GET /ui/login", c.loginForm)
	c.mux.HandleFunc("POST /ui/login", c.login)
	c.mux.HandleFunc("POST /ui/logout", c.action(c.logout))
	c.mux.HandleFunc("GET /ui/{$}", c.page(c.sources))
	c.mux.HandleFunc("GET /ui/items", c.page(c.items))
	c.mux.HandleFunc("GET /ui/item", c.page(c.item))
	c.mux.HandleFunc("GET /ui/events", c.page(c.events))
	c.mux.HandleFunc("GET /ui/event", c.page(c.event))
	c.mux.HandleFunc("GET /ui/subscriptions", c.page(c.subscriptions))
	c.mux.HandleFunc("GET /ui/dead", c.page(c.dead))
	c.mux.HandleFunc("POST /ui/poll", c.action(c.pollNow))
	c.mux.HandleFunc("POST /ui/redeliver", c.action(c.redeliver))
	return c
}

// keys are what one api_token gives the console.
type keys struct {
	token [32]byte // sha256 of the token
	mac   [32]byte // signs session cookies and CSRF tokens
}

// SetToken replaces the token people sign in with; "" turns the console
// off. The MAC key is derived from the token, so sessions survive a
// restart and end when the token changes.
func (c *Console) SetToken(token string) {
	if token == "" {
		c.keys.Store(nil)
		return
	}
	c.keys.Store(&keys{token: sha256.Sum256([]byte(token)), mac: sha256.Sum256([]byte("pollrelay-ui\x00" + token))})
}

// Sampler returns the sampler behind the charts; Run it for their data.
func (c *Console) Sampler() *Sampler { return c.sampler }

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if c.keys.Load() == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("the console is off: set api_token to enable it\n"))
		return
	}
	if r.URL.Path == "/ui" {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	c.mux.ServeHTTP(w, r)
}

func (c *Console) sign(parts ...string) string {
	k := c.keys.Load()
	if k == nil {
		return ""
	}
	m := hmac.New(sha256.New, k.mac[:])
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newSession is the cookie's value: its expiry and a MAC over it.
func (c *Console) newSession() string {
	exp := strconv.FormatInt(c.opts.Now().Add(sessionTTL).Unix(), 10)
	return exp + "." + c.sign("session", exp)
}

// session returns the request's valid session cookie value, or "".
func (c *Console) session(r *http.Request) string {
	ck, err := r.Cookie(cookieName)
	if err != nil || c.keys.Load() == nil {
		return ""
	}
	exp, mac, ok := strings.Cut(ck.Value, ".")
	if !ok || mac == "" || !hmac.Equal([]byte(mac), []byte(c.sign("session", exp))) {
		return ""
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || c.opts.Now().Unix() >= n {
		return ""
	}
	return ck.Value
}

// csrf is the token every form of a session carries.
func (c *Console) csrf(session string) string { return c.sign("csrf", session) }

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "login", "", pageData{Title: "Sign in"})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	sum := sha256.Sum256([]byte(strings.TrimSpace(r.PostFormValue("token"))))
	k := c.keys.Load()
	if k == nil || subtle.ConstantTimeCompare(sum[:], k.token[:]) != 1 {
		c.render(w, http.StatusUnauthorized, "login", "", pageData{Title: "Sign in", Error: "That is not the api_token."})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: c.newSession(), Path: "/ui/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ string) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// page serves a GET page to a signed-in user; others go to the sign-in form.
func (c *Console) page(h func(w http.ResponseWriter, r *http.Request, session string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == "" {
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		h(w, r, s)
	}
}

// action serves a POST: a session and its CSRF token are both required,
// so another site can neither read nor forge one (SameSite=Strict already
// keeps the cookie off cross-site requests; the token also covers
// same-site ones and browsers without SameSite).
func (c *Console) action(h func(w http.ResponseWriter, r *http.Request, session string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		s := c.session(r)
		if s == "" {
			c.render(w, http.StatusUnauthorized, "login", "", pageData{Title: "Sign in", Error: "Sign in first."})
			return
		}
		got := r.PostFormValue("csrf")
		if subtle.ConstantTimeCompare([]byte(got), []byte(c.csrf(s))) != 1 {
			http.Error(w, "missing or wrong CSRF token; reload the page and try again", http.StatusForbidden)
			return
		}
		h(w, r, s)
	}
}

// back redirects to a console page with a message shown once.
func back(w http.ResponseWriter, r *http.Request, to, msg string) {
	u, err := url.Parse(to)
	if err != nil || u.IsAbs() || u.Host != "" || !strings.HasPrefix(u.Path, "/ui/") {
		u = &url.URL{Path: "/ui/"}
	}
	q := u.Query()
	q.Set("msg", msg)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}
