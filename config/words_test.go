package config

import "regexp"

// goInternals matches what a message must never show a user: Go type
// names, fmt's verb errors and Go's time layout.
var goInternals = regexp.MustCompile(`interface \{\}|map\[|\[\]|reflect|%!|2006-01-02|15:04:05|unconvertible|!!(seq|map|str|int)`)

// quoted matches a Go-quoted string in a message.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
