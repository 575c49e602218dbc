package main

import (
	"fmt"
	"io"

	"github.com/pollrelay/pollrelay/signature"
)

var secretCommand = &command{
	name:    "secret",
	summary: "print a fresh whsec_ signing secret",
	about: "Prints a new Standard Webhooks secret: whsec_ followed by the base64 of 32\n" +
		"random bytes. Give it to a subscription's secret: and to the receiver that\n" +
		"verifies its webhooks (Standard Webhooks and Svix libraries take it as is).",
	example: "export WEBHOOK_SECRET=$(pollrelay secret)",
	run: func(c *command, args []string, stdout, stderr io.Writer) int {
		if code, ok := parseArgs(c, args, stdout, stderr, nil); !ok {
			return code
		}
		fmt.Fprintln(stdout, signature.NewSecret())
		return 0
	},
}
