package main

import (
	"fmt"
	"io"
)

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
