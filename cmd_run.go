package main

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

var runCommand = &command{
	name:    "run",
	args:    "--config FILE",
	summary: "run the sidecar",
	about: "Polls every source, records what it sees in the store, and delivers each\n" +
		"transition to the matching subscriptions with durable retries; serves /v1,\n" +
		"/metrics, /healthz and /readyz on listen. SIGTERM or SIGINT stop polling, give\n" +
		"in-flight deliveries delivery.shutdown_grace and close the store; SIGHUP (or\n" +
		"POST /v1/reload) reloads the file, and a bad file keeps the running config.\n" +
		"POLLRELAY_<KEY> variables override config keys (POLLRELAY_API_TOKEN).",
	example: "pollrelay validate --config pollrelay.yaml && pollrelay run --config pollrelay.yaml",
	flags:   func(fs *flagSet) { new(configFlags).declare(fs) },
	run:     cmdRun,
}

func cmdRun(c *command, args []string, stdout, stderr io.Writer) int {
	cfg, path, code := loadConfig(c, args, stdout, stderr, nil)
	if cfg == nil {
		return code
	}
	level := new(slog.LevelVar)
	level.Set(parseLevel(cfg.Log.Level))
	log := newLevelLogger(stderr, cfg.Log.Format, level)
	setMemoryLimit(cfg.MemoryLimitBytes, log)
	for _, w := range cfg.Warnings() {
		log.Warn("config: " + w)
	}
	b, err := NewBridge(cfg, log)
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		return 1
	}
	b.path, b.level = path, level
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			log.Info("SIGHUP: reloading config", "path", path)
			_ = b.ReloadFile() // a failure is logged and keeps the running config
		}
	}()
	if err := b.Run(ctx); err != nil {
		log.Error("stopped with an error", "error", err.Error())
		return 1
	}
	return 0
}

// setMemoryLimit applies memory_limit_bytes (0: none), unless GOMEMLIMIT,
// which the runtime has already applied, says otherwise.
func setMemoryLimit(limit int64, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		log.Debug("memory limit from GOMEMLIMIT", "bytes", debug.SetMemoryLimit(-1))
		return
	}
	if limit <= 0 {
		limit = math.MaxInt64 // the runtime's "no limit"
	}
	debug.SetMemoryLimit(limit)
	log.Debug("memory limit", "bytes", limit)
}
