package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pollrelay/pollrelay/api"
	"github.com/pollrelay/pollrelay/cluster"
	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/notifier"
	"github.com/pollrelay/pollrelay/poller"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/subscription"
)

// Bridge is a running pollrelay: store, pollers, notifier and API.
type Bridge struct {
	log      *slog.Logger
	st       store.Store
	reg      *prometheus.Registry
	poller   *poller.Manager
	cluster  *cluster.Coordinator
	notifier *notifier.Notifier
	api      *api.Server
	ln       net.Listener
	// handler is what ln serves: the API, with the vendor-shaped APIs
	// that share its address; facades have their own addresses.
	handler http.Handler
	facades []facadeListener
	// subs holds every subscription, config and API; the notifier's set
	// is built from it.
	subs *subscription.Registry

	reloadOK      prometheus.Gauge
	reloadTime    prometheus.Gauge
	reloadPending *prometheus.GaugeVec
	// level is the logger's level when run built it, so a reload can
	// change log.level; nil leaves the level fixed.
	level *slog.LevelVar

	// subsMu orders the rebuilds of the notifier's subscriptions: each
	// reads the registry and sets the notifier under it, so a rebuild that
	// read older state never replaces one that read newer.
	subsMu sync.Mutex

	mu  sync.Mutex
	cfg *config.Config
	// boot is the config the process started with: the keys only a
	// restart applies are compared with it, not with the last reload.
	boot *config.Config
	path string // config file, for reloads; empty when built in code
	// grace is the notifier's delivery.shutdown_grace, fixed at start.
	grace   time.Duration
	started chan struct{}
}

// NewBridge opens the store and the listener; nothing polls or delivers
// until Run.
func NewBridge(cfg *config.Config, log *slog.Logger) (*Bridge, error) {
	st, err := openStore(cfg, false, log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(st.Collectors()...)
	b := &Bridge{
		log: log, st: st, reg: reg, ln: ln, cfg: cfg, boot: cfg, started: make(chan struct{}),
		poller: poller.NewManager(st, poller.NewMetrics(reg), log),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pollrelay_config_last_reload_successful", Help: "1 if the last config reload succeeded.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pollrelay_config_last_reload_success_timestamp_seconds", Help: "Unix time of the last successful config load.",
		}),
		reloadPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pollrelay_config_restart_required",
			Help: "1 for each config key a reload changed that takes effect only after a restart.",
		}, []string{"key"}),
	}
	reg.MustRegister(b.reloadOK, b.reloadTime, b.reloadPending)
	b.reloadOK.Set(1)
	b.reloadTime.SetToCurrentTime()
	b.grace = cfg.Delivery.ShutdownGrace
	var fence poller.Fence
	b.cluster, fence = openCluster(cfg, st, reg, log)
	b.poller.UseLeases(b.cluster, fence)
	b.notifier = notifier.New(st, notifier.NewMetrics(reg), log, notifier.Options{Grace: b.grace})
	b.subs = subscription.NewRegistry(log)
	err = b.subs.SetConfig(cfg.Subscriptions)
	if err == nil {
		now := time.Now()
		err = st.View(func(t store.Txn) error { return b.subs.Load(t, now) })
	}
	if err != nil {
		st.Close()
		ln.Close()
		return nil, err
	}
	b.notifier.SetSubscriptions(b.deliverTo(cfg))
	if cfg.APIToken == "" {
		log.Info("management API /v1 is off: set api_token to enable it")
	}
	b.api = api.New(api.Options{
		Token: cfg.APIToken, Gatherer: reg, Logger: log, Store: st,
		Poller: b.poller, Notifier: b.notifier, Control: b, Subscriptions: b.subs,
		RotationOverlap: cfg.Delivery.RotationOverlap,
	})
	b.handler, b.facades, err = openFacades(cfg, b.api, b.subs, b.api, log)
	if err != nil {
		st.Close()
		ln.Close()
		return nil, err
	}
	return b, nil
}

// Config returns the running configuration.
func (b *Bridge) Config() *config.Config {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg
}

// SubscriptionsChanged rebuilds the notifier's subscriptions from the
// registry, after the API changed one.
func (b *Bridge) SubscriptionsChanged() error {
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	b.notifier.SetSubscriptions(b.deliverTo(b.Config()))
	return nil
}

// ReloadFile loads the config file again and applies it; on any problem
// the running config stays and the problems are returned.
func (b *Bridge) ReloadFile() error {
	if b.path == "" {
		return errors.New("reload: pollrelay was not started from a config file")
	}
	next, err := config.Load(b.path)
	if err == nil {
		err = b.Reload(next)
	}
	if err != nil {
		b.ReloadFailed(err)
	}
	// Loading a file allocates many times what the config keeps (YAML
	// nodes, koanf's maps, the validation's copies): for 10,000 sources
	// some 600 MiB, which the heap would hold until the scavenger gave it
	// back bit by bit. A reload is rare; returning it at once keeps RSS
	// where it was before the SIGHUP.
	debug.FreeOSMemory()
	return err
}

// RestartRequired lists the keys the running config has changed, against
// the one the process started with, that take effect only after a restart.
func (b *Bridge) RestartRequired() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return config.RestartKeys(b.boot, b.cfg)
}

// Started is closed once Run has started the pollers and the notifier.
func (b *Bridge) Started() <-chan struct{} { return b.started }

// Addr is the address the API listens on.
func (b *Bridge) Addr() string { return b.ln.Addr().String() }

// lostStore is the channel that says st was taken over by another
// pollrelay (a PostgreSQL schema after an outage), nil for a store that
// cannot be.
func lostStore(st store.Store) <-chan error {
	if l, ok := st.(interface{ Lost() <-chan error }); ok {
		return l.Lost()
	}
	return nil
}

// Run starts everything and blocks until ctx ends, then shuts down in an
// order that loses nothing: pollers first (no new events), then the
// notifier (in-flight deliveries get the grace period; the rest stay due
// in the store), then the API, and the store last, when nothing writes.
// All of it ends within the grace period plus shutdownBound.
func (b *Bridge) Run(ctx context.Context) error {
	srv := &http.Server{Handler: b.handler, ReadHeaderTimeout: 10 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(b.ln) }()
	for _, f := range b.facades {
		go f.serve(b.log)
	}

	nctx, stopNotifier := context.WithCancel(context.Background())
	defer stopNotifier()
	notifierDone := make(chan error, 1)
	go func() { notifierDone <- b.notifier.Run(nctx) }()

	cctx, stopCluster := context.WithCancel(context.Background())
	defer stopCluster()
	clusterDone := make(chan struct{})
	go func() {
		defer close(clusterDone)
		b.cluster.Run(cctx)
	}()

	pctx, stopPollers := context.WithCancel(context.Background())
	defer stopPollers()
	b.mu.Lock()
	b.poller.Start(pctx, b.cfg.Sources)
	b.mu.Unlock()
	pruneDone := make(chan struct{})
	go func() {
		defer close(pruneDone)
		b.pruneLoop(pctx)
	}()
	sampleDone := make(chan struct{})
	go func() {
		defer close(sampleDone)
		b.api.Console().Sampler().Run(pctx)
	}()
	b.api.SetReady(true)
	close(b.started)
	b.log.Info("pollrelay running", "listen", b.Addr(), "sources", len(b.cfg.Sources), "subscriptions", len(b.cfg.Subscriptions))

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-lostStore(b.st):
		runErr = fmt.Errorf("store: %w", err)
	case err := <-srvErr:
		runErr = fmt.Errorf("api server: %w", err)
	case err := <-notifierDone:
		runErr = fmt.Errorf("notifier: %w", err)
		notifierDone <- nil
	}
	b.log.Info("shutting down")
	b.api.SetReady(false)
	err := stopInOrder([]stopStep{
		{"stopping the pollers", func() error {
			stopPollers()
			b.poller.Stop()
			<-pruneDone
			<-sampleDone
			return nil
		}},
		{"handing the leases over", func() error {
			lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := b.cluster.Leave(lctx)
			stopCluster()
			<-clusterDone
			if err != nil {
				// They expire by themselves within cluster.lease.
				b.log.Warn("hand the leases over", "error", err.Error())
			}
			return nil
		}},
		{"finishing in-flight deliveries", func() error {
			stopNotifier()
			if err := <-notifierDone; err != nil {
				return fmt.Errorf("notifier: %w", err)
			}
			return nil
		}},
		{"stopping the API", func() error {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				b.log.Warn("api shutdown", "error", err.Error())
			}
			for _, f := range b.facades {
				if err := f.srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
					b.log.Warn("vendor-shaped API shutdown", "vendor", f.vendor, "error", err.Error())
				}
			}
			return nil
		}},
		{"closing the store", b.st.Close},
	}, b.grace+shutdownBound)
	if err != nil {
		return errors.Join(runErr, err)
	}
	b.log.Info("stopped")
	return runErr
}

// pruneLoop removes events older than storage.retention, with their
// finished deliveries and attempts, a minute after start and then hourly.
// It runs in small transactions beside polls and deliveries.
func (b *Bridge) pruneLoop(ctx context.Context) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		retention := b.Config().Storage.Retention
		if retention > 0 {
			start := time.Now()
			res, err := b.st.Prune(start.Add(-retention))
			switch {
			case err != nil:
				b.log.Error("pruning old events failed", "error", err.Error())
			case res.Events > 0:
				b.log.Info("pruned old events", "events", res.Events, "deliveries", res.Deliveries,
					"attempts", res.Attempts, "took", time.Since(start).String())
			}
		}
		t.Reset(time.Hour)
	}
}

// Reload applies a new, already validated config: changed sources restart,
// unchanged ones keep running, removed ones stop, the subscriptions are
// replaced, and api_token, log.level and memory_limit_bytes change at once.
// The changed keys a running process cannot apply are logged, counted in
// pollrelay_config_restart_required (see RestartRequired).
func (b *Bridge) Reload(cfg *config.Config) error {
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	if err := b.subs.SetConfig(cfg.Subscriptions); err != nil {
		b.reloadOK.Set(0)
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	restart := config.RestartKeys(b.boot, cfg)
	b.reloadPending.Reset()
	for _, k := range restart {
		b.reloadPending.WithLabelValues(k).Set(1)
	}
	if len(restart) > 0 {
		b.log.Warn("config keys changed that take effect only after a restart", "keys", strings.Join(restart, ", "))
	}
	if cfg.APIToken != b.cfg.APIToken {
		b.api.SetToken(cfg.APIToken)
		b.log.Info("api_token changed; the previous token is refused from now on", "api", map[bool]string{true: "off", false: "on"}[cfg.APIToken == ""])
	}
	if b.level != nil {
		b.level.Set(parseLevel(cfg.Log.Level))
	}
	if cfg.MemoryLimitBytes != b.cfg.MemoryLimitBytes {
		setMemoryLimit(cfg.MemoryLimitBytes, b.log)
	}
	b.poller.Apply(cfg.Sources)
	b.notifier.SetSubscriptions(b.deliverTo(cfg))
	b.cfg = cfg
	b.reloadOK.Set(1)
	b.reloadTime.SetToCurrentTime()
	for _, w := range cfg.Warnings() {
		b.log.Warn("config: " + w)
	}
	b.log.Info("config reloaded", "sources", len(cfg.Sources), "subscriptions", len(cfg.Subscriptions))
	return nil
}

// ReloadFailed records a reload whose config did not load.
func (b *Bridge) ReloadFailed(err error) {
	b.reloadOK.Set(0)
	b.log.Error("config reload failed; keeping the running config", "error", err.Error())
}

// deliverTo builds the notifier's set from the registry, with the
// delivery policy of cfg. The registry holds only validated
// subscriptions, so one that cannot be built (which would be a bug) is
// logged and left out rather than stop every other from delivering.
func (b *Bridge) deliverTo(cfg *config.Config) []*notifier.Subscription {
	active := b.subs.Active()
	out := make([]*notifier.Subscription, 0, len(active))
	now := time.Now()
	for _, s := range active {
		ns, err := notifier.FromSubscription(s, now)
		if err != nil {
			b.log.Error("subscription cannot be delivered to; skipped", "subscription", s.ID(), "error", err.Error())
			continue
		}
		if s.ManagedBy == subscription.ManagedByAPI {
			ns.AllowPrivate = cfg.Delivery.AllowPrivateNetworks
		}
		ns.RequireHTTPS = cfg.Delivery.RequireHTTPS
		out = append(out, ns)
	}
	return out
}
