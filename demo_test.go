package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/syncbuf"
)

// TestDemoShowsVerifiedWebhooks is the newcomer's first run: within ten
// seconds the receiver must print verified webhooks and reject none.
func TestDemoShowsVerifiedWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for up to 10 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, out, &syncbuf.Buffer{}) }()
	verified := regexp.MustCompile(`(?m)^✓ .*signature verified, webhook-id evt_`)
	for len(verified.FindAllString(out.String(), -1)) < 3 && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if n := len(verified.FindAllString(got, -1)); n < 3 {
		t.Fatalf("%d verified webhooks within 10 s:\n%s", n, got)
	}
	if strings.Contains(got, "✗") || !strings.Contains(got, ", 0 rejected") {
		t.Errorf("the demo's receiver rejected webhooks:\n%s", got)
	}
}

func TestDemoRecipeErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"demo", "--recipe", "nope"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "glossi") {
		t.Errorf("unknown recipe: exit %d, %q", code, errb.String())
	}
	if names := recipeNames(); strings.Join(names, ",") != "csm,dam,glossi,gumlet,gumnut" {
		t.Errorf("built-in recipes: %v", names)
	}
}

// TestDemoRecipeVerifies plays recipes of each signature scheme (a
// Standard Webhooks one, glossi's hmac-sha256, gumlet's token): the
// receiver checks the first webhooks with the subscription's own scheme
// and rejects none. DAM's also creates a webhook through its facade.
func TestDemoRecipeVerifies(t *testing.T) {
	if testing.Short() {
		t.Skip("plays recipes for a few seconds each")
	}
	for _, vendor := range []string{"csm", "dam", "glossi", "gumlet"} {
		t.Run(vendor, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out := &syncbuf.Buffer{}
			done := make(chan error, 1)
			go func() { done <- runRecipeDemo(ctx, vendor, out, &syncbuf.Buffer{}) }()
			// DAM's app creates a webhook through the DAM-shaped API, and
			// the demo goes on until that webhook has a delivery too.
			want := "\n✓ "
			if vendor == "dam" {
				want = " POST /facade "
			}
			for !strings.Contains(out.String(), want) && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if !regexp.MustCompile(`(?m)^✓ \d\d:\d\d:\d\d  POST /\S* \S+  \{`).MatchString(got) || strings.Contains(got, "✗") || !strings.Contains(got, ", 0 rejected") {
				t.Errorf("%s: no verified webhook, or one rejected:\n%s", vendor, got)
			}
			if vendor == "dam" && (!strings.Contains(got, "through dam's API: POST /api/v2/admin/webhooks -> 200") || !strings.Contains(got, want)) {
				t.Errorf("dam: the webhook created through the facade got no delivery:\n%s", got)
			}
		})
	}
}
