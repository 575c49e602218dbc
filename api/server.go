// Package api serves pollrelay's HTTP surface: the /v1 management API,
// the /ui console, /metrics, /healthz and /readyz.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pollrelay/pollrelay/api/ui"
	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/notifier"
	"github.com/pollrelay/pollrelay/poller"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/subscription"
)

// Poller is what the API needs of the polling side.
type Poller interface {
	PollNow(ctx context.Context, name string) error
	Status() []poller.Status
	PutWatch(ctx context.Context, source, id string, ttl time.Duration, metadata json.RawMessage) (store.Watch, error)
	DeleteWatch(ctx context.Context, source, id string) error
	Watches(ctx context.Context, source, cursor string, limit int) ([]store.Watch, string, error)
}

// Notifier is what the API needs of the delivery side.
type Notifier interface {
	Redeliver(ctx context.Context, eventID string) (int, error)
	Ping(ctx context.Context, subID string) (string, error)
	Replay(ctx context.Context, subID string, since, until time.Time, types []string) (int, error)
	Stats(subID string) (notifier.SubscriptionStats, bool)
	SetDisabled(ctx context.Context, subID string, disabled bool) error
	Forget(ctx context.Context, subID string) error
	RetryQuarantined(ctx context.Context, id string) error
}

// Control is what the API needs of the process that wires everything.
type Control interface {
	// Config returns the running configuration.
	Config() *config.Config
	// SubscriptionsChanged rebuilds the notifier's subscriptions from the
	// registry after the API created, changed or deleted one.
	SubscriptionsChanged() error
	// ReloadFile loads and applies the config file; a bad file keeps the
	// old one running and its problems are returned.
	ReloadFile() error
}

// RestartReporter is what a Control may add: the config keys a reload
// changed that take effect only after a restart, for POST /v1/reload.
type RestartReporter interface {
	RestartRequired() []string
}

// Options are the server's dependencies.
type Options struct {
	Token    string
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	Store    store.Store
	Poller   Poller
	Notifier Notifier
	Control  Control
	// Subscriptions holds every subscription, config and API; the API
	// reads it and records its changes in it.
	Subscriptions *subscription.Registry
	// RotationOverlap is how long an old secret keeps signing after
	// rotate-secret (default 24h).
	RotationOverlap time.Duration
	Now             func() time.Time
}

// maxBody caps request bodies on every route.
const maxBody = 1 << 20

// Server is the HTTP handler set.
type Server struct {
	opts  Options
	ready atomic.Bool
	mux   *http.ServeMux
	// token is the SHA-256 of api_token, or nil while /v1 is off; a reload
	// swaps it, so a revoked token is refused from the next request on.
	token  atomic.Pointer[[32]byte]
	routes []string // "METHOD /pattern" of every /v1 route, for the OpenAPI check
	// subLock is held by the subscription change running; see lockSubs.
	subLock chan struct{}
	ui      *ui.Console
}

// pinger is a store on a server that may be unreachable: /readyz fails
// while it does not answer.
type pinger interface {
	Ping(ctx context.Context) error
}

// pingTimeout bounds /readyz's check of the store, well inside a probe's
// default timeout.
const pingTimeout = 2 * time.Second

// New builds the server; it reports not ready until SetReady(true).
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RotationOverlap == 0 {
		o.RotationOverlap = 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{opts: o, mux: http.NewServeMux(), subLock: make(chan struct{}, 1)}
	s.mux.HandleFunc("/healthz", method("GET", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	s.mux.HandleFunc("/readyz", method("GET", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
			return
		}
		if p, ok := s.opts.Store.(pinger); ok {
			ctx, cancel := context.WithTimeout(r.Context(), pingTimeout)
			defer cancel()
			if err := p.Ping(ctx); err != nil {
				// The error names the server; the logs of the polls and
				// deliveries that fail meanwhile say more.
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store_unreachable"})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}))
	if o.Gatherer != nil {
		s.mux.Handle("/metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	}
	s.ui = ui.New(ui.Options{
		Store: o.Store, Poller: o.Poller, Notifier: o.Notifier,
		Config: func() *config.Config { return o.Control.Config() }, Subscriptions: func() ([]string, error) { return o.Subscriptions.IDs(), nil },
		Gatherer: o.Gatherer, Logger: o.Logger, Now: o.Now,
	})
	s.SetToken(o.Token)
	s.mux.Handle("/ui", s.ui)
	s.mux.Handle("/ui/", s.ui)
	s.routesV1()
	s.mux.HandleFunc("/v1/", s.auth(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route: "+r.URL.Path)
	}))
	return s
}

// SetToken replaces the bearer token /v1 and the console require; ""
// turns both off.
func (s *Server) SetToken(token string) {
	s.ui.SetToken(token)
	if token == "" {
		s.token.Store(nil)
		return
	}
	sum := sha256.Sum256([]byte(token))
	s.token.Store(&sum)
}

// Console is the /ui console; its Sampler gathers the charts' data.
func (s *Server) Console() *ui.Console { return s.ui }

// SetReady marks the store open and the config loaded (or not).
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// Routes lists "METHOD /pattern" for every /v1 route.
func (s *Server) Routes() []string { return s.routes }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handle registers one pattern with a handler per method, so a wrong method
// gets a JSON 405 naming the allowed ones.
func (s *Server) handle(pattern string, handlers map[string]http.HandlerFunc) {
	allowed := make([]string, 0, len(handlers))
	for m := range handlers {
		allowed = append(allowed, m)
		s.routes = append(s.routes, m+" "+pattern)
	}
	allow := strings.Join(sortStrings(allowed), ", ")
	s.mux.HandleFunc(pattern, s.auth(func(w http.ResponseWriter, r *http.Request) {
		h, ok := handlers[r.Method]
		if !ok {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed; use %s", r.Method, allow))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h(w, r)
	}))
}

func method(m string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != m && !(m == "GET" && r.Method == "HEAD") {
			w.Header().Set("Allow", m)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed; use %s", r.Method, m))
			return
		}
		h(w, r)
	}
}

// auth checks the bearer token in constant time: both sides are hashed
// first, so not even the token's length leaks through timing.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		want := s.token.Load()
		if want == nil {
			writeError(w, http.StatusNotFound, "the management API is off: set api_token to enable it")
			return
		}
		got, ok := bearerToken(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pollrelay"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// decode reads a JSON body strictly: unknown fields and trailing data are
// 422s, an oversized body a 413.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("request body is empty; send a JSON object")
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
		return false
	case err != nil:
		writeError(w, http.StatusUnprocessableEntity, "body: "+jsonError(err))
		return false
	}
	return true
}

// internal answers 500 for an error the caller can't fix, logging it.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.opts.Logger.Error("api request failed", "method", r.Method, "path", r.URL.Path, "error", err.Error())
	writeError(w, http.StatusInternalServerError, "internal error; see pollrelay's log")
}
