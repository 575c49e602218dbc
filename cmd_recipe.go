package main

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/demo"
	"github.com/pollrelay/pollrelay/signature"
	"github.com/pollrelay/pollrelay/subscription"
)

// recipes are the vendor examples and their simulated upstreams, built in
// so `pollrelay demo --recipe glossi` works from the binary alone.
//
//go:embed examples/*.yaml testdata/vendors/*/scenario.json
var recipes embed.FS

// recipeNames lists the built-in recipes.
func recipeNames() []string {
	entries, _ := recipes.ReadDir("examples")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.Sort(out)
	return out
}

// runRecipeDemo plays a vendor's scenario, a step every few seconds,
// through the vendor's example config and a receiver that checks each
// webhook the way that vendor documents.
func runRecipeDemo(ctx context.Context, vendor string, stdout, stderr io.Writer) error {
	yaml, err := recipes.ReadFile("examples/" + vendor + ".yaml")
	if err != nil {
		return fmt.Errorf("no recipe %q; there are: %s", vendor, strings.Join(recipeNames(), ", "))
	}
	raw, err := recipes.ReadFile("testdata/vendors/" + vendor + "/scenario.json")
	if err != nil {
		return err
	}
	sc, err := demo.ParseScenario(raw)
	if err != nil {
		return err
	}
	up := demo.NewUpstream(sc)
	upSrv, err := serve(up)
	if err != nil {
		return err
	}
	defer upSrv.Close()

	secret := signature.NewSecret()
	var check func(body []byte, h http.Header) error
	var verified, rejected atomic.Int64
	rcv, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := check(body, r.Header); err != nil {
			rejected.Add(1)
			fmt.Fprintf(stdout, "✗ rejected: %v\n", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		verified.Add(1)
		fmt.Fprintf(stdout, "✓ %s  %s %s  %s\n", time.Now().Format("15:04:05"), r.Method, eventName(body), clip(body, 140))
		w.WriteHeader(http.StatusOK)
	}))
	if err != nil {
		return err
	}
	defer rcv.Close()

	env := map[string]string{strings.ToUpper(vendor) + "_API": upSrv.URL, "APP_WEBHOOK_URL": rcv.URL + "/webhooks"}
	for k, v := range sc.Env {
		env[k] = v
	}
	cfg, err := config.ParseWith(yaml, func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		if strings.Contains(k, "SECRET") || strings.Contains(k, "TOKEN") {
			return secret, true
		}
		if strings.HasPrefix(k, "POLLRELAY_") {
			return "", false
		}
		return "demo", true
	})
	if err != nil {
		return fmt.Errorf("recipe %s: %w", vendor, err)
	}
	// Demo pace: poll every second, nothing on disk.
	cfg.Listen, cfg.Storage = "127.0.0.1:0", config.Storage{InMemory: true}
	cfg.Log = config.Log{Level: "warn", Format: "text"}
	for i := range cfg.Sources {
		cfg.Sources[i].Interval, cfg.Sources[i].Timeout = time.Second, 900*time.Millisecond
	}
	sub := cfg.Subscriptions[0]
	check, err = verifierFor(sub)
	if err != nil {
		return err
	}
	b, err := NewBridge(cfg, newLogger(stderr, cfg.Log))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pollrelay demo --recipe %s: examples/%s.yaml against a simulated %s API (%d steps)\n"+
		"the receiver checks each webhook as %s documents (%s)\n\n", vendor, vendor, vendor, len(sc.Steps), vendor, schemeName(sub))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-b.Started()
		for {
			i, note := up.Step()
			fmt.Fprintf(stdout, "-- step %d: %s\n", i, note)
			select {
			case <-ctx.Done():
				return
			case <-time.After(3 * time.Second):
			}
			if !up.Advance() {
				cancel()
				return
			}
		}
	}()
	err = b.Run(ctx)
	fmt.Fprintf(stdout, "\n%d webhook(s) verified, %d rejected\n", verified.Load(), rejected.Load())
	return err
}

// verifierFor checks a webhook the way the subscription's scheme (and so
// the vendor) documents.
func verifierFor(s subscription.Spec) (func([]byte, http.Header) error, error) {
	secrets, sc := s.Secrets(), s.Scheme()
	secret := secrets[0]
	switch sc.Name {
	case "hmac-sha256":
		return func(b []byte, h http.Header) error {
			return signature.VerifyHMAC(secret, b, h.Get(sc.Header), sc.Encoding)
		}, nil
	case "token":
		return func(_ []byte, h http.Header) error { return signature.VerifyToken(secret, h.Get(sc.Header)) }, nil
	default:
		v, err := signature.NewVerifier(secrets...)
		if err != nil {
			return nil, err
		}
		return v.Verify, nil
	}
}

func schemeName(s subscription.Spec) string {
	switch sc := s.Scheme(); sc.Name {
	case "hmac-sha256":
		return "HMAC-SHA256 " + sc.Encoding + " in " + sc.Header
	case "token":
		return "secret token in " + sc.Header
	}
	return "Standard Webhooks signature"
}

// eventName finds the event's name in the common body shapes.
func eventName(body []byte) string {
	var m map[string]any
	json.Unmarshal(body, &m)
	for _, k := range []string{"type", "event"} {
		if s, ok := m[k].(string); ok {
			return s
		}
	}
	return "?"
}

func clip(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
