package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/pollrelay/pollrelay/config"
)

// configFlags are the flags of the commands that read a config file.
type configFlags struct {
	path string
}

func (f *configFlags) declare(fs *flagSet) {
	fs.StringVar(&f.path, "config", "", "the YAML config `FILE` (required)")
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

// loadConfig parses a command's flags (--config and those extra adds) and
// loads its config. A nil config means the command is done and exits with
// the code: 0 after its help, 2 for bad flags, 1 for a bad config, whose
// problems have been printed.
func loadConfig(c *command, args []string, stdout, stderr io.Writer, extra func(*flagSet)) (*config.Config, string, int) {
	var f configFlags
	code, ok := parseArgs(c, args, stdout, stderr, func(fs *flagSet) {
		f.declare(fs)
		if extra != nil {
			extra(fs)
		}
	})
	if !ok {
		return nil, "", code
	}
	if f.path == "" {
		code, _ := usageError(c, stderr, "--config FILE is required")
		return nil, "", code
	}
	cfg, err := config.Load(f.path)
	if err != nil {
		printConfigError(stderr, f.path, err)
		return nil, "", 1
	}
	return cfg, f.path, 0
}

var validateCommand = &command{
	name:    "validate",
	args:    "--config FILE",
	summary: "check a config and list every problem",
	about: "Loads the config as run would (${ENV} expanded, POLLRELAY_* overrides applied),\n" +
		"compiles every jq expression and checks every value. Exits 1 listing every\n" +
		"problem with its path (sources[1].interval: must be at least 1s), or prints a\n" +
		"one-line summary and exits 0. It reads no store and contacts no upstream.",
	example: "pollrelay validate --config pollrelay.yaml",
	flags:   func(fs *flagSet) { new(configFlags).declare(fs) },
	run:     cmdValidate,
}

func cmdValidate(c *command, args []string, stdout, stderr io.Writer) int {
	cfg, _, code := loadConfig(c, args, stdout, stderr, nil)
	if cfg == nil {
		return code
	}
	fmt.Fprintln(stdout, cfg.Summary())
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return 0
}
