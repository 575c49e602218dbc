package main

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pollrelay/pollrelay/internal/harness"
)

var screenshots = flag.String("screenshots", "", "also save the console browser test's screenshots in this directory")

// chromium finds Debian's headless-capable Chromium. In CI (CI=true) a
// missing browser fails the test; elsewhere it skips with the way to get one.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found; CI installs it (apt-get install -y chromium)")
	}
	t.Skip("chromium not found: apt-get install -y chromium to run the console's browser test")
	return ""
}

// browser starts a headless Chromium with a fresh profile and nothing that
// reaches the network by itself.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first run starts the browser, which lives as long as ctx: no
	// timeout on it, only on what runs after.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

// TestConsoleInBrowser signs in through the form, finds a source and its
// items after a transition, opens an event and its attempts, presses
// redeliver and sees the new attempt, screenshotting each page.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	rig := newConsoleRig(t)
	rig.transition(t)
	evID := rig.event(t, "job-1")
	shots := t.TempDir()
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			for _, dir := range []string{shots, *screenshots} {
				if dir == "" {
					continue
				}
				if err := os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644); err != nil {
					return err
				}
			}
			return nil
		})
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	run("wrong token",
		chromedp.Navigate(rig.base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "not-the-token"),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS(".error")),
		shot("login-refused"),
	)
	if got := text(".error"); !strings.Contains(got, "not the api_token") {
		t.Errorf("a wrong token shows %q", got)
	}
	run("sign in",
		chromedp.SendKeys(chromedp.ID("token"), consoleToken),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("sources")),
		shot("sources"),
	)
	if got := text("#sources tbody"); !strings.Contains(got, "jobs") || !strings.Contains(got, "up") {
		t.Errorf("the sources page shows %q", got)
	}
	run("items",
		chromedp.Click(chromedp.CSS(`#sources a[href^="/ui/items"]`)),
		chromedp.WaitVisible(chromedp.ID("items")),
		shot("items"),
	)
	if got := text("#items tbody"); !strings.Contains(got, "job-1") || !strings.Contains(got, `"ready"`) || !strings.Contains(got, hostileID) {
		t.Errorf("the items page shows %q", got)
	}
	run("event",
		chromedp.Navigate(rig.base+"/ui/events?source=jobs"),
		chromedp.WaitVisible(chromedp.ID("events")),
		shot("events"),
		chromedp.Click(chromedp.CSS(`#events a[href="/ui/event?id=`+evID+`"]`)),
		chromedp.WaitVisible(chromedp.ID("attempts")),
		shot("event"),
	)
	before := text("#attempts tbody")
	if !strings.Contains(before, "http_error") || !strings.Contains(before, hostileAnswer) || strings.Contains(before, "success") {
		t.Errorf("the event's attempts show %q", before)
	}
	// The same button with its form's CSRF field removed is refused.
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#redeliver").form.querySelector("[name=csrf]").remove(), true`))
	if err != nil {
		t.Fatal(err)
	}
	// RunResponse waits for the form's navigation itself: a query started
	// on the page being replaced can wait on the old document forever.
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("redeliver")))
	if err != nil {
		t.Fatalf("redeliver without the CSRF token: %v", err)
	}
	if resp.Status != 403 {
		t.Errorf("redeliver without the CSRF token answered %d, want 403", resp.Status)
	}
	run("refused page", shot("csrf-refused"))
	if got := text("body"); !strings.Contains(got, "CSRF token") {
		t.Errorf("redeliver without the CSRF token shows %q", got)
	}
	if n := attempts(t, rig, evID); n != strings.Count(before, "http_error") {
		t.Errorf("a refused redeliver made an attempt: %d", n)
	}
	run("back to the event",
		chromedp.Navigate(rig.base+"/ui/event?id="+evID),
		chromedp.WaitVisible(chromedp.ID("attempts")),
	)
	rig.accept.Store(true)
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("redeliver"))); err != nil {
		t.Fatalf("redeliver: %v", err)
	}
	run("redeliver", chromedp.WaitVisible(chromedp.CSS(".flash")))
	if got := text(".flash"); !strings.Contains(got, "1 delivery") {
		t.Errorf("redeliver says %q", got)
	}
	harness.WaitFor(t, 15*time.Second, func() bool { return strings.Contains(text("#attempts tbody"), "success") || reload(ctx) })
	run("after redeliver", shot("redelivered"))
	var rows int
	rows, err = chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#attempts tr.attempt").length`))
	if err != nil {
		t.Fatal(err)
	}
	if rows != strings.Count(before, "http_error")+1 {
		t.Errorf("%d attempt rows after redeliver; before:\n%s", rows, before)
	}
	for _, name := range []string{"sources", "items", "events", "event", "redelivered"} {
		if fi, err := os.Stat(filepath.Join(shots, "console-"+name+".png")); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}

// reload reloads the page and reports false, for waitFor.
func reload(ctx context.Context) bool {
	chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("attempts")))
	return false
}

// demoScreenshot saves the demo's console as the README shows it, once
// its charts have a bar:
// go test -run TestDemoPrintsTheConsole -screenshots docs .
func demoScreenshot(t *testing.T, base, token string) {
	ctx := browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/ui/login"),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("sources")),
	)
	if err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 60*time.Second, func() bool {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".chart.ok rect").length`))
		if err == nil && n > 0 {
			return true
		}
		chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("sources")))
		return false
	})
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*screenshots, "console.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
