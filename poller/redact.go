package poller

import (
	"errors"
	"net/url"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/internal/redact"
)

// sourceSecrets is the credentials a source sends upstream: its auth, its
// header values, its URL's user info and query values. An upstream may
// echo any of them, in any encoding they travelled in, in an error page,
// which would otherwise end up in a log line or in GET /v1/sources.
func sourceSecrets(src *config.Source) *redact.Set {
	s := &redact.Set{}
	if a := src.Auth; a != nil {
		s.Add(a.Bearer)
		if a.Basic != nil {
			s.AddBasic(a.Basic.Username, a.Basic.Password)
		}
		if o := a.OAuth2; o != nil {
			// The token endpoint gets the client's credentials as Basic,
			// form-encoded first (RFC 6749 §2.3.1), or in the form body.
			s.AddBasic(o.ClientID, o.ClientSecret)
			s.AddBasic(url.QueryEscape(o.ClientID), url.QueryEscape(o.ClientSecret))
			s.Add(o.RefreshToken)
		}
		if a.Query != nil {
			s.Add(a.Query.Value) // percent-encoded forms included
		}
	}
	for _, v := range src.Headers {
		s.AddHeader(v)
	}
	s.AddURL(src.URL)
	return s
}

// redactError replaces every secret in err's text. A *PollError keeps its
// outcome and status, so metrics and backoff still see why it failed.
func redactError(err error, secrets *redact.Set) error {
	if err == nil {
		return err
	}
	msg := err.Error()
	red := secrets.Truncated(secrets.String(msg), snippetCut)
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
