package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pollrelay/pollrelay/demo"
	"github.com/pollrelay/pollrelay/internal/harness"
)

// exchange is one request to a vendor-shaped API and the answer expected.
// Documented ones are the seed's examples, copied from the vendor's
// document: -update never rewrites them, and without an answer only their
// status is compared (the document shows no body). The others are
// pollrelay's choices, recorded by -update.
type exchange struct {
	Note       string            `json:"note"`
	Documented bool              `json:"documented"`
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       json.RawMessage   `json:"body,omitempty"`
	Status     int               `json:"status"`
	Answer     json.RawMessage   `json:"answer,omitempty"`
}

var (
	millisTime = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`)
	hexSecret  = regexp.MustCompile(`"secret":"[0-9a-f]{64}"`)
	uuidID     = regexp.MustCompile(`"id":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"`)
)

// normalizeAnswer replaces what differs between runs: times, and the
// secrets and ids a facade makes.
func normalizeAnswer(b []byte) []byte {
	b = millisTime.ReplaceAll(b, []byte(`"@time"`))
	b = hexSecret.ReplaceAll(b, []byte(`"secret":"@secret"`))
	return uuidID.ReplaceAll(b, []byte(`"id":"@uuid"`))
}

// replayFacade sends each exchange of testdata/compat/<vendor>.json to
// base, with @key in a header standing for key, and compares status,
// Content-Type and body; -update records the undocumented answers.
func replayFacade(t *testing.T, vendor, base, key string) {
	t.Helper()
	path := filepath.Join("testdata", "compat", vendor+".json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var xs []exchange
	if err := json.Unmarshal(data, &xs); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for i := range xs {
		x := &xs[i]
		req, err := http.NewRequest(x.Method, base+x.Path, bytes.NewReader(x.Body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range x.Headers {
			req.Header.Set(k, strings.ReplaceAll(v, "@key", key))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := normalizeAnswer(body)
		if *update && !x.Documented {
			x.Status, x.Answer = resp.StatusCode, nil
			if len(got) > 0 {
				x.Answer = got
			}
			continue
		}
		if resp.StatusCode != x.Status {
			t.Errorf("%s %s (%s): status %d, want %d; body %s", x.Method, x.Path, x.Note, resp.StatusCode, x.Status, body)
			continue
		}
		if len(x.Answer) == 0 {
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s (%s): Content-Type %q", x.Method, x.Path, x.Note, ct)
		}
		var want bytes.Buffer
		if err := json.Compact(&want, x.Answer); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s %s (%s):\n got: %s\nwant: %s", x.Method, x.Path, x.Note, got, want.Bytes())
		}
	}
	if *update {
		out, _ := json.MarshalIndent(xs, "", " ")
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// facadeRun is a recipe's config running with its facade, the simulated
// upstream, and a receiver that records what arrives under /facade.
type facadeRun struct {
	b    *Bridge
	up   *demo.Upstream
	base string
	mu   sync.Mutex
	got  []captured
}

func startFacade(t *testing.T, vendor string, env map[string]string) *facadeRun {
	t.Helper()
	sc, err := demo.LoadScenario(filepath.Join("testdata", "vendors", vendor, "scenario.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := &facadeRun{up: demo.NewUpstream(sc)}
	upURL := newServer(t, f.up)
	rcv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.HasPrefix(r.URL.Path, "/facade") {
			f.mu.Lock()
			f.got = append(f.got, captured{Method: r.Method, Path: r.URL.Path, raw: body, header: r.Header.Clone()})
			f.mu.Unlock()
		}
	}))
	cfg := recipeConfig(t, vendor, sc, upURL, rcv+"/webhooks", env)
	// The webhooks the facade creates are API subscriptions, which may
	// reach the loopback receiver only so.
	cfg.Delivery.AllowPrivateNetworks = true
	f.b = startRecipeBridge(t, cfg)
	f.base = "http://" + f.b.FacadeAddr(vendor)
	return f
}

// play polls every source through each step of the scenario.
func (f *facadeRun) play(t *testing.T) {
	t.Helper()
	for {
		for _, s := range f.b.Config().Sources {
			pollNow(t, f.b, s.Name)
		}
		waitDelivered(t, f.b)
		if !f.up.Advance() {
			return
		}
	}
}

func (f *facadeRun) arrived() []captured {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]captured(nil), f.got...)
}

// call sends one JSON request to the facade and decodes its answer.
func (f *facadeRun) call(t *testing.T, method, path string, header map[string]string, body string, answer any) int {
	t.Helper()
	req, err := http.NewRequest(method, f.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if answer != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, answer); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

// TestCompatDAM replays DAM's documented requests against its facade,
// then creates a webhook the way a DAM app does and checks that it is an
// ordinary API subscription delivered like the template: signed with its
// secret, sent with the webhook's http_method, only its trigger events.
func TestCompatDAM(t *testing.T) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	f := startFacade(t, "dam", map[string]string{"DAM_API_KEY": "dam_test", "WEBHOOK_SECRET": secret})
	key := "dam-compat-key-for-tests"
	replayFacade(t, "dam", f.base, key)

	var created struct {
		Webhook struct {
			ID uint64 `json:"id"`
		} `json:"webhook"`
	}
	rcvURL := strings.TrimSuffix(f.b.Config().Subscriptions[0].URL, "/webhooks") + "/facade/dam"
	body := `{"name": "App", "http_url": "` + rcvURL + `", "http_method": "PUT", "trigger_events": ["ASSET_ADDED", "ASSET_REMOVED"]}`
	if st := f.call(t, "POST", "/api/v2/admin/webhooks", map[string]string{"X-API-KEY": key}, body, &created); st != 200 {
		t.Fatalf("create: %d", st)
	}
	sub := f.b.subs.Get("dam-" + strconv.FormatUint(created.Webhook.ID, 10))
	if sub == nil || sub.Record == nil {
		t.Fatalf("dam-%d is not an API subscription", created.Webhook.ID)
	}
	f.play(t)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, c := range f.arrived() {
		if err := wh.Verify(c.raw, c.header); err != nil {
			t.Errorf("signature: %v", err)
		}
		if c.Method != http.MethodPut {
			t.Errorf("method %s, want the webhook's http_method", c.Method)
		}
		var env struct{ Type string }
		json.Unmarshal(c.raw, &env)
		types = append(types, env.Type)
	}
	if strings.Join(types, " ") != "ASSET_ADDED ASSET_REMOVED" && strings.Join(types, " ") != "ASSET_REMOVED ASSET_ADDED" {
		t.Errorf("the facade's webhook got %v, want its trigger events ASSET_ADDED and ASSET_REMOVED", types)
	}
	var shown struct {
		Webhook struct {
			LatestRun *struct {
				ResponseStatus int `json:"response_status"`
			} `json:"latest_run"`
		} `json:"webhook"`
	}
	f.call(t, "GET", "/api/v2/admin/webhooks/"+strconv.FormatUint(created.Webhook.ID, 10), map[string]string{"X-API-KEY": key}, "", &shown)
	if shown.Webhook.LatestRun == nil || shown.Webhook.LatestRun.ResponseStatus != 200 {
		t.Errorf("latest_run = %+v after deliveries, want the last one's 200", shown.Webhook.LatestRun)
	}
}

// TestCompatGlossi replays Glossi's documented calls, then checks the
// webhook's deliveries with the secret the PUT answered, the way Glossi's
// Node sample does, and the health GET shows.
func TestCompatGlossi(t *testing.T) {
	f := startFacade(t, "glossi", map[string]string{"GLOSSI_API_KEY": "glossi_test", "GLOSSI_WEBHOOK_SECRET": "unused-template-secret"})
	key := "glossi-compat-key-for-tests"
	replayFacade(t, "glossi", f.base, key)

	rcvURL := strings.TrimSuffix(f.b.Config().Subscriptions[0].URL, "/webhooks") + "/facade/glossi"
	put := func() (secret string) {
		var saved struct {
			Secret string `json:"secret"`
		}
		body := `{"url": "` + rcvURL + `", "events": ["model.processed", "model.failed", "project.created", "job.complete", "job.failed", "render.complete", "render.failed"], "enabled": true, "description": "app"}`
		if st := f.call(t, "PUT", "/api/v1/webhooks", map[string]string{"X-API-Key": key}, body, &saved); st != 200 {
			t.Fatalf("PUT: %d", st)
		}
		return saved.Secret
	}
	secret := put()
	if again := put(); again != secret {
		t.Errorf("an update answered another secret: it must return the stored one")
	}
	f.play(t)
	got := f.arrived()
	if len(got) == 0 {
		t.Fatal("nothing arrived at the facade's webhook")
	}
	for _, c := range got {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(c.raw)
		if want := hex.EncodeToString(mac.Sum(nil)); c.header.Get("X-Glossi-Signature") != want {
			t.Errorf("X-Glossi-Signature does not verify with the secret PUT answered")
		}
	}
	var shown map[string]any
	f.call(t, "GET", "/api/v1/webhooks", map[string]string{"X-API-Key": key}, "", &shown)
	if _, has := shown["secret"]; has {
		t.Error("GET shows the secret")
	}
	if shown["lastResponseStatus"] != float64(200) || shown["lastTriggeredAt"] == nil || shown["failureCount"] != float64(0) {
		t.Errorf("GET after deliveries: %v", shown)
	}
}

// TestCompatGumlet replays Gumlet's documented request on the facade's
// own address, then checks the webhook's deliveries carry the template's
// token.
func TestCompatGumlet(t *testing.T) {
	token := "gumlet-secret-token"
	f := startFacade(t, "gumlet", map[string]string{"GUMLET_API_KEY": "gumlet_test", "GUMLET_WEBHOOK_TOKEN": "app-token", "GUMLET_FACADE_TOKEN": token})
	if f.b.FacadeAddr("gumlet") == f.b.Addr() {
		t.Fatal("the gumlet facade shares pollrelay's address; its /v1/org would collide with /v1")
	}
	key := "gumlet-compat-key-for-tests"
	replayFacade(t, "gumlet", f.base, key)

	rcvURL := strings.TrimSuffix(f.b.Config().Subscriptions[0].URL, "/webhooks") + "/facade/gumlet"
	body := `{"url": "` + rcvURL + `", "sources": ["5f462c1561cf8a766464ffc4"], "triggers": ["status"]}`
	if st := f.call(t, "POST", "/v1/org/webhooks", map[string]string{"Authorization": "Bearer " + key}, body, nil); st != 200 {
		t.Fatalf("create: %d", st)
	}
	f.play(t)
	harness.WaitFor(t, 10*time.Second, func() bool { return len(f.arrived()) > 0 })
	for _, c := range f.arrived() {
		if c.header.Get("x-gumlet-token") != token {
			t.Errorf("x-gumlet-token = %q, want the template's token", c.header.Get("x-gumlet-token"))
		}
	}
}

// TestCompatDAMRacesAndNames: creates racing each other all succeed with
// ids of their own; a /v1 subscription that took a facade's name is
// skipped over; an update through the facade keeps what /v1 changed.
func TestCompatDAMRacesAndNames(t *testing.T) {
	f := startFacade(t, "dam", map[string]string{"DAM_API_KEY": "dam_test", "WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	key := map[string]string{"X-API-KEY": "dam-compat-key-for-tests"}
	ctx := t.Context()
	if _, err := f.b.api.CreateSubscription(ctx, map[string]any{"name": "dam-1", "url": "https://example.com/taken"}, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", nil); err != nil {
		t.Fatal(err)
	}
	const n = 40
	ids := make(chan uint64, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			var created struct {
				Webhook struct {
					ID uint64 `json:"id"`
				} `json:"webhook"`
			}
			body := `{"name": "Racer", "http_url": "https://example.com/hooks", "http_method": "POST", "trigger_events": ["ASSET_ADDED"]}`
			if st := f.call(t, "POST", "/api/v2/admin/webhooks", key, body, &created); st != 200 {
				t.Errorf("a racing create answered %d", st)
			}
			ids <- created.Webhook.ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[uint64]bool{}
	for id := range ids {
		if id < 2 || seen[id] {
			t.Errorf("id %d given twice, or the one /v1 holds", id)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct ids for %d creates", len(seen), n)
	}
	// /v1 gives dam-2 a header; DAM renames it; the header stays.
	sub := f.b.subs.Get("dam-2")
	body, err := json.Marshal(map[string]any{"name": "dam-2", "url": sub.Spec.URL, "headers": map[string]string{"X-Tenant": "acme"}, "events": sub.Spec.Events})
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	json.Unmarshal(body, &tree)
	if _, err := f.b.api.ReplaceSubscription(ctx, sub.Record, tree, sub.Record.Compat); err != nil {
		t.Fatal(err)
	}
	if st := f.call(t, "PATCH", "/api/v2/admin/webhooks/2", key, `{"name": "Renamed"}`, nil); st != 200 {
		t.Fatalf("rename: %d", st)
	}
	if h := f.b.subs.Get("dam-2").Spec.Headers["X-Tenant"]; h != "acme" {
		t.Errorf("after a DAM update the header /v1 set is %q", h)
	}
}
