package main

import (
	"context"
	"embed"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
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
	// The receiver's address goes in the config; how it verifies comes
	// out of it.
	rcvLn, err := listenLoopback()
	if err != nil {
		return err
	}
	defer rcvLn.Close()

	env := map[string]string{strings.ToUpper(vendor) + "_API": upSrv.URL, "APP_WEBHOOK_URL": "http://" + rcvLn.Addr().String() + "/webhooks"}
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
	for i := range cfg.Compat {
		if cfg.Compat[i].Listen != "" {
			cfg.Compat[i].Listen = "127.0.0.1:0"
		}
	}
	// The webhook the app creates through the facade is an API
	// subscription; the demo's receiver is on loopback.
	cfg.Delivery.AllowPrivateNetworks = true
	sub := cfg.Subscriptions[0]
	v, err := signature.NewSchemeVerifier(sub.Scheme(), sub.Secrets()...)
	if err != nil {
		return err
	}
	recv := demo.NewVendorReceiver(v, stdout)
	defer serveOn(rcvLn, recv).Close()
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
		if err := createThroughFacade(cfg, b, "http://"+rcvLn.Addr().String()+"/facade", stdout); err != nil {
			fmt.Fprintf(stdout, "✗ %v\n", err)
		}
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
	fmt.Fprintf(stdout, "\n%d webhook(s) verified, %d rejected\n", recv.Verified.Load(), recv.Rejected.Load())
	return err
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

// facadeCalls are the requests an app makes to create its webhook through
// a vendor's API, for the recipes whose template signs as the demo's
// receiver checks (Glossi's facade makes each webhook its own secret).
var facadeCalls = map[string]struct{ path, header, body string }{
	config.VendorDAM: {"/api/v2/admin/webhooks", "X-API-KEY",
		`{"name": "Demo app", "http_url": %q, "http_method": "POST", "trigger_events": ["ASSET_ADDED", "ASSET_REMOVED", "ASSET_FINISHED_INGEST", "ASSET_EDITED_METADATA", "COLLECTION_CREATED", "COLLECTION_DELETED", "COLLECTION_UPDATED_METADATA"]}`},
}

// createThroughFacade shows the recipe's vendor-shaped API at work: the
// app creates its webhook with the vendor's own call, and its deliveries
// arrive at url beside the config subscription's.
func createThroughFacade(cfg *config.Config, b *Bridge, url string, stdout io.Writer) error {
	for _, c := range cfg.Compat {
		call, ok := facadeCalls[c.Vendor]
		if !ok {
			continue
		}
		req, err := http.NewRequest("POST", "http://"+b.FacadeAddr(c.Vendor)+call.path, strings.NewReader(fmt.Sprintf(call.body, url)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(call.header, c.APIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("create a webhook through the %s API: %w", c.Vendor, err)
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		fmt.Fprintf(stdout, "-- the app creates its webhook through %s's API: POST %s -> %d\n   %s\n", c.Vendor, call.path, resp.StatusCode, clipLine(answer, 200))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the %s API answered %d", c.Vendor, resp.StatusCode)
		}
	}
	return nil
}

func clipLine(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
