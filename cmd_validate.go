package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/pollrelay/pollrelay/config"
)

// configFlag parses the --config flag common to most commands.
func configFlag(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "path to the YAML config")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	if *path == "" {
		fmt.Fprintf(stderr, "pollrelay %s: --config FILE is required\n", name)
		return "", false
	}
	return *path, true
}

// printConfigError lists every validation problem, one per line. Any other
// error from config.Load already names the file.
func printConfigError(w io.Writer, path string, err error) {
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		fmt.Fprintf(w, "%s: %d problem(s):\n", path, len(ve.Problems))
		for _, p := range ve.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		return
	}
	fmt.Fprintln(w, err)
}

// loadConfig parses a command's flags and loads its config. A non-zero
// exit code means the problem has been printed: 2 for bad flags, 1 for a
// bad config.
func loadConfig(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*config.Config, string, int) {
	path, ok := configFlag(name, args, stderr, extra)
	if !ok {
		return nil, "", 2
	}
	cfg, err := config.Load(path)
	if err != nil {
		printConfigError(stderr, path, err)
		return nil, "", 1
	}
	return cfg, path, 0
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	cfg, _, code := loadConfig("validate", args, stderr, nil)
	if code != 0 {
		return code
	}
	fmt.Fprintln(stdout, cfg.Summary())
	return 0
}

func cmdRun(args []string, _, stderr io.Writer) int {
	cfg, path, code := loadConfig("run", args, stderr, nil)
	if code != 0 {
		return code
	}
	level := new(slog.LevelVar)
	level.Set(parseLevel(cfg.Log.Level))
	log := newLevelLogger(stderr, cfg.Log.Format, level)
	setMemoryLimit(cfg.MemoryLimitBytes, log)
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
			_, _ = b.ReloadFile() // a failure is logged and keeps the running config
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

// newLogger builds the slog logger the config asks for.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	lv := new(slog.LevelVar)
	lv.Set(parseLevel(c.Level))
	return newLevelLogger(w, c.Format, lv)
}

// newLevelLogger builds a logger whose level lv can change while it runs.
func newLevelLogger(w io.Writer, format string, lv *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// parseLevel reads log.level; validation has already refused other values.
func parseLevel(s string) slog.Level {
	var level slog.Level
	_ = level.UnmarshalText([]byte(s))
	return level
}
