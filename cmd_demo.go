package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/demo"
	"github.com/pollrelay/pollrelay/signature"
)

// demoConfig is the bridge config the demo runs: the same YAML a user
// writes, pointed at the simulated API and the receiver.
const demoConfig = `
listen: 127.0.0.1:0
storage: {in_memory: true}
log: {level: warn, format: text}
sources:
  - name: jobs
    url: %s/v1/jobs
    interval: 1s
    timeout: 900ms
    items: '.data[]'
    id: '.id'
    state: '.status'
    object: '{id, status, progress, error}'
    events:
      - {type: job.created, on: created}
      - {type: 'job.{current}', on: [created, changed], to: [processing, ready, errored]}
      - {type: job.deleted, on: deleted}
subscriptions:
  - name: app
    url: %s/webhooks
    events: ['job.*']
    secret: %s
    retry: {schedule: [1s, 2s, 5s]}
`

var demoCommand = &command{
	name:    "demo",
	args:    "[--for 30s] [--recipe NAME]",
	summary: "a simulated API, the bridge and a verifying receiver",
	about: "Runs a simulated task API, pollrelay polling it on an in-memory store, and a\n" +
		"receiver that verifies every Standard Webhooks signature and prints each\n" +
		"webhook: what a newcomer runs first. --recipe plays a vendor recipe from\n" +
		"examples/ instead, with a receiver that checks that vendor's own signature.\n" +
		"Nothing is written to disk; Ctrl-C stops it.",
	example: "pollrelay demo --for 30s\npollrelay demo --recipe glossi",
	flags:   func(fs *flagSet) { new(demoFlags).declare(fs) },
	run:     cmdDemo,
}

type demoFlags struct {
	dur    time.Duration
	recipe string
}

func (f *demoFlags) declare(fs *flagSet) {
	fs.DurationVar(&f.dur, "for", 0, "stop after this `DURATION` (default: until Ctrl-C)")
	fs.StringVar(&f.recipe, "recipe", "", "play the vendor recipe `NAME` instead: "+strings.Join(recipeNames(), ", "))
}

func cmdDemo(c *command, args []string, stdout, stderr io.Writer) int {
	var f demoFlags
	if code, ok := parseArgs(c, args, stdout, stderr, f.declare); !ok {
		return code
	}
	dur, recipe := &f.dur, &f.recipe
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	run := runDemo
	if *recipe != "" {
		run = func(ctx context.Context, stdout, stderr io.Writer) error {
			return runRecipeDemo(ctx, *recipe, stdout, stderr)
		}
	}
	if err := run(ctx, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "pollrelay demo: %v\n", err)
		return 1
	}
	return 0
}

func runDemo(ctx context.Context, stdout, stderr io.Writer) error {
	secret := signature.NewSecret()
	api := demo.NewTaskAPI(time.Now)
	upstream, err := serve(api)
	if err != nil {
		return err
	}
	defer upstream.Close()
	recv, err := demo.NewReceiver(secret, stdout)
	if err != nil {
		return err
	}
	receiver, err := serve(recv)
	if err != nil {
		return err
	}
	defer receiver.Close()

	cfg, err := config.Parse(fmt.Appendf(nil, demoConfig, upstream.URL, receiver.URL, secret))
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	token := rand.Text() // the console's and /v1's token, for this run only
	cfg.APIToken = token
	log := newLogger(stderr, cfg.Log)
	b, err := NewBridge(cfg, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `pollrelay demo
  simulated task API  %s/v1/jobs   (a job every 2s: queued → processing → ready | errored)
  pollrelay           polls it every 1s, stores state in memory, API on http://%s
  your app            %s/webhooks  (verifies every Standard Webhooks signature)
  console             http://%s/ui/  sign in with the token %s
The first poll records a baseline silently; transitions follow within seconds. Ctrl-C stops.

`, upstream.URL, b.Addr(), receiver.URL, b.Addr(), token)
	err = b.Run(ctx)
	fmt.Fprintf(stdout, "\n%d webhook(s) verified, %d rejected\n", recv.Verified.Load(), recv.Rejected.Load())
	return err
}

// server is a loopback HTTP server for the demo's fake API and receiver.
type server struct {
	URL string
	srv *http.Server
}

func serve(h http.Handler) (*server, error) {
	ln, err := listenLoopback()
	if err != nil {
		return nil, err
	}
	return serveOn(ln, h), nil
}

func listenLoopback() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}

// serveOn serves h on ln until Close, which closes ln too.
func serveOn(ln net.Listener, h http.Handler) *server {
	s := &server{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	go s.srv.Serve(ln)
	return s
}

func (s *server) Close() { s.srv.Close() }
