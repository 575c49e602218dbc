package poller

import (
	"errors"
	"net/url"
	"strings"

	"github.com/pollrelay/pollrelay/config"
)

// sourceSecrets lists the credential values a source sends upstream: its
// auth, its header values and its URL's query values. An upstream may echo
// any of them in an error page, which would otherwise end up in a log line
// or in GET /v1/sources.
func sourceSecrets(src *config.Source) []string {
	var out []string
	add := func(s string) {
		if len(s) >= 4 {
			out = append(out, s)
		}
	}
	if a := src.Auth; a != nil {
		add(a.Bearer)
		if a.Basic != nil {
			add(a.Basic.Password)
		}
		if o := a.OAuth2; o != nil {
			add(o.ClientSecret)
			add(o.RefreshToken)
		}
		if a.Query != nil {
			add(a.Query.Value)
			add(url.QueryEscape(a.Query.Value))
		}
	}
	for _, v := range src.Headers {
		add(v)
		if _, tok, ok := strings.Cut(v, " "); ok { // "Bearer xyz": xyz alone too
			add(tok)
		}
	}
	if u, err := url.Parse(src.URL); err == nil {
		for _, vs := range u.Query() {
			for _, v := range vs {
				add(v)
			}
		}
		if p, ok := u.User.Password(); ok {
			add(p)
		}
	}
	return out
}

// redactError replaces every secret in err's text. A *PollError keeps its
// outcome and status, so metrics and backoff still see why it failed.
func redactError(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	red := redactText(msg, secrets)
	if red == msg {
		return err
	}
	if pe, ok := errors.AsType[*PollError](err); ok {
		c := *pe
		c.Err = errors.New(red)
		return &c
	}
	return errors.New(red)
}

// redactText replaces every secret in s.
func redactText(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}
