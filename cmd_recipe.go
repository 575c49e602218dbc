package main

import (
	"context"
	"embed"
	"fmt"
	"io"
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
