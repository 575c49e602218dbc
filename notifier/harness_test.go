package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
	"github.com/pollrelay/pollrelay/subscription"
)

// pipeNet is an in-memory network: an http.Server listens on it and a
// transport dials it. Inside a testing/synctest bubble real sockets never
// count as blocked, so fake time could not advance; net.Pipe does.
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeNet() *pipeNet {
	return &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pipeNet) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

func (p *pipeNet) Addr() net.Addr { return pipeAddr{} }

func (p *pipeNet) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case p.conns <- server:
		return client, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.done:
		return nil, net.ErrClosed
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "receiver.test:80" }

// hit is one request as a receiver got it.
type hit struct {
	At     time.Time // the receiver's clock: fake inside a bubble
	Method string
	Header http.Header
	Body   []byte
	ID     string // webhook-id
	N      int    // attempt number of this webhook-id at this receiver
	Env    struct {
		Type string `json:"type"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	Status int
}

// receiver records every request and answers what answer says (204 when
// answer is nil or returns 0). An answer that writes the response itself
// returns -1.
type receiver struct {
	mu     sync.Mutex
	hits   []hit
	count  map[string]int
	answer func(h *hit, w http.ResponseWriter, r *http.Request) int
	ch     chan hit
}

func newReceiver() *receiver {
	return &receiver{count: map[string]int{}, ch: make(chan hit, 1000)}
}

func (rc *receiver) setAnswer(f func(h *hit, w http.ResponseWriter, r *http.Request) int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = f
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h := hit{At: time.Now(), Method: r.Method, Header: r.Header.Clone(), Body: body, ID: r.Header.Get("webhook-id")}
	_ = json.Unmarshal(body, &h.Env)
	rc.mu.Lock()
	rc.count[h.ID]++
	h.N = rc.count[h.ID]
	answer := rc.answer
	rc.mu.Unlock()
	status := 0
	if answer != nil {
		status = answer(&h, w, r)
	}
	if status == 0 {
		status = http.StatusNoContent
	}
	if status > 0 {
		w.WriteHeader(status)
	}
	h.Status = status
	rc.mu.Lock()
	rc.hits = append(rc.hits, h)
	rc.mu.Unlock()
	rc.ch <- h
}

func (rc *receiver) all() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.hits...)
}

// next returns the next request. The deadline only stops a broken test
// from hanging; inside a bubble it is fake time.
func (rc *receiver) next(t *testing.T) hit {
	t.Helper()
	select {
	case h := <-rc.ch:
		return h
	case <-time.After(time.Hour):
		t.Fatal("no request arrived")
		return hit{}
	}
}

// env is a notifier over a real Badger in a directory, running.
type env struct {
	t      *testing.T
	dir    string
	st     store.Store
	n      *Notifier
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// start opens the store in dir and runs a notifier over it; stop (also a
// cleanup) shuts both down.
func start(t *testing.T, dir string, subs []*Subscription, o Options) *env {
	t.Helper()
	return startLogging(t, dir, subs, o, slog.LevelDebug)
}

// startLogging is start with the notifier's log lines below level dropped.
func startLogging(t *testing.T, dir string, subs []*Subscription, o Options, level slog.Level) *env {
	t.Helper()
	return startWithLogger(t, dir, subs, o, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level})))
}

// startWithLogger is start logging to log.
func startWithLogger(t *testing.T, dir string, subs []*Subscription, o Options, log *slog.Logger) *env {
	t.Helper()
	st, err := badger.Open(badger.Options{Path: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, st: st, reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	e.n = New(st, NewMetrics(e.reg), log, o)
	e.n.SetSubscriptions(subs)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- e.n.Run(ctx) }()
	t.Cleanup(e.stop)
	return e
}

// stop stops the notifier (in-flight deliveries get Options.Grace) and
// closes the store.
func (e *env) stop() {
	e.once.Do(func() {
		e.cancel()
		if err := <-e.done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
		if err := e.st.Close(); err != nil {
			e.t.Errorf("close store: %v", err)
		}
	})
}

// emit writes an event for item of source "tasks" as the diff would.
func (e *env) emit(typ, item string) *event.Event {
	e.t.Helper()
	now := time.Now()
	ev := &event.Event{
		ID: event.NewID(now), Type: typ, Kind: event.Changed, Source: "tasks", ItemID: item,
		Previous: json.RawMessage(`"queued"`), Current: json.RawMessage(`"ready"`),
		Object:    json.RawMessage(fmt.Sprintf(`{"id":%q,"status":"ready"}`, item)),
		CreatedAt: now,
	}
	if err := e.st.Update(func(t store.Txn) error { return t.AddEvent(ev) }); err != nil {
		e.t.Fatal(err)
	}
	return ev
}

func (e *env) delivery(sub, eventID string) *store.Delivery {
	e.t.Helper()
	var d *store.Delivery
	if err := e.st.View(func(t store.Txn) error {
		var err error
		d, err = t.Delivery(sub, eventID)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *env) attempts(eventID string) []store.Attempt {
	e.t.Helper()
	var as []store.Attempt
	if err := e.st.View(func(t store.Txn) error {
		var err error
		as, err = t.Attempts(eventID)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return as
}

// waitState polls until the delivery is in state. Outside a bubble this
// is a real poll with a generous deadline; inside one, fake time.
func (e *env) waitState(sub, eventID, state string) *store.Delivery {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d := e.delivery(sub, eventID)
		if d != nil && d.State == state {
			return d
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("delivery %s/%s: want state %s, have %+v", sub, eventID, state, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// gauge reads pollrelay_delivery_queue{subscription, state}. (The
// client's testutil would need a module go.mod does not list yet.)
func (e *env) gauge(sub, state string) float64 {
	var m dto.Metric
	if err := e.n.metrics.queue.WithLabelValues(sub, state).Write(&m); err != nil {
		e.t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// outcomes reads pollrelay_deliveries_total{subscription, outcome}.
func (e *env) outcomes(sub, outcome string) float64 {
	var m dto.Metric
	if err := e.n.metrics.deliveries.WithLabelValues(sub, outcome).Write(&m); err != nil {
		e.t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// parseSubs builds subscriptions from YAML list items through the real
// config loader, so scheme and payload settings are tested as users write
// them.
func parseSubs(t testing.TB, items ...string) []*Subscription {
	t.Helper()
	var b strings.Builder
	b.WriteString("storage: {in_memory: true}\nsources:\n  - {name: tasks, url: 'http://127.0.0.1:9/', interval: 1h}\nsubscriptions:\n")
	for _, it := range items {
		for i, line := range strings.Split(strings.TrimSpace(it), "\n") {
			if i == 0 {
				b.WriteString("  - " + strings.TrimSpace(line) + "\n")
			} else {
				b.WriteString("    " + strings.TrimSpace(line) + "\n")
			}
		}
	}
	cfg, err := config.Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", b.String(), err)
	}
	subs := make([]*Subscription, 0, len(cfg.Subscriptions))
	for _, spec := range cfg.Subscriptions {
		c, err := subscription.FromConfig(spec)
		if err != nil {
			t.Fatal(err)
		}
		s, err := FromSubscription(c, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	return subs
}

// testSecret is a fixed whsec_ secret for tests.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// bubble is a receiver served over a pipeNet inside a synctest bubble, and
// the transport to reach it.
type bubble struct {
	rc  *receiver
	srv *http.Server
	net *pipeNet
	tr  *http.Transport
}

// newBubbleReceiver must be called inside the bubble.
func newBubbleReceiver(t *testing.T) *bubble {
	b := &bubble{rc: newReceiver(), net: newPipeNet()}
	b.srv = &http.Server{Handler: b.rc}
	b.tr = &http.Transport{DialContext: b.net.dial}
	go b.srv.Serve(b.net)
	t.Cleanup(func() {
		b.srv.Close()
		b.net.Close()
		b.tr.CloseIdleConnections()
	})
	return b
}

// url is the receiver's address as subscriptions name it.
const bubbleURL = "http://receiver.test/hook"

// put writes a prepared event as the diff would.
func (e *env) put(ev *event.Event) *event.Event {
	e.t.Helper()
	if ev.ID == "" {
		ev.ID = event.NewID(time.Now())
	}
	if ev.CreatedAt.IsZero() {
		ev.CreatedAt = time.Now()
	}
	if err := e.st.Update(func(t store.Txn) error { return t.AddEvent(ev) }); err != nil {
		e.t.Fatal(err)
	}
	return ev
}
