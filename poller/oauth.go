package poller

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/pollrelay/pollrelay/config"
)

// OutcomeAuth is a poll that could not get credentials: the OAuth 2.0
// token endpoint failed or refused.
const OutcomeAuth = "auth_error"

// maxEarlyRefresh bounds how long before its expiry a token is replaced;
// a short-lived token is replaced at four fifths of its life instead.
const maxEarlyRefresh = 30 * time.Second

// tokens is one source's OAuth 2.0 access token: fetched on demand with
// golang.org/x/oauth2, kept until shortly before it expires, and dropped
// when the upstream answers 401 to it. x/oauth2's own ReuseTokenSource
// has no way to drop a token the upstream refused, hence this cache.
type tokens struct {
	grant func(ctx context.Context, refresh string) (*oauth2.Token, error)
	now   func() time.Time

	mu      sync.Mutex // held across a fetch: one request at a time
	refresh string     // the refresh token, replaced when the server rotates it
	tok     *oauth2.Token
	renewAt time.Time
}

// newTokens prepares the grant auth asks for: refresh-token when it has a
// refresh token, client-credentials otherwise. hc carries the token
// requests (its timeout bounds each).
func newTokens(o *config.OAuth2Auth, hc *http.Client, now func() time.Time) *tokens {
	t := &tokens{refresh: o.RefreshToken, now: now}
	with := func(ctx context.Context) context.Context { return context.WithValue(ctx, oauth2.HTTPClient, hc) }
	if o.RefreshToken != "" {
		conf := &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: o.Scopes,
			Endpoint: oauth2.Endpoint{TokenURL: o.TokenURL}}
		t.grant = func(ctx context.Context, refresh string) (*oauth2.Token, error) {
			return conf.TokenSource(with(ctx), &oauth2.Token{RefreshToken: refresh}).Token()
		}
	} else {
		conf := &clientcredentials.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			TokenURL: o.TokenURL, Scopes: o.Scopes}
		t.grant = func(ctx context.Context, _ string) (*oauth2.Token, error) { return conf.Token(with(ctx)) }
	}
	return t
}

// Token returns the cached token, or a new one when there is none or it is
// about to expire.
func (t *tokens) Token(ctx context.Context) (*oauth2.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.tok != nil && (t.renewAt.IsZero() || now.Before(t.renewAt)) {
		return t.tok, nil
	}
	tok, err := t.grant(ctx, t.refresh)
	if err != nil {
		return nil, &PollError{Outcome: OutcomeAuth, Err: fmt.Errorf("oauth2 token: %w", err)}
	}
	if tok.RefreshToken != "" {
		t.refresh = tok.RefreshToken
	}
	t.tok, t.renewAt = tok, time.Time{}
	if !tok.Expiry.IsZero() {
		t.renewAt = tok.Expiry.Add(-min(maxEarlyRefresh, tok.Expiry.Sub(now)/5))
	}
	return tok, nil
}

// Refused drops tok if it is still the cached one: the upstream answered
// 401 to it, so the next Token fetches another.
func (t *tokens) Refused(tok *oauth2.Token) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok == tok {
		t.tok = nil
	}
}

// tokenClient is the client for a source's token endpoint: the source's
// transport and timeout, and no redirects, so the client secret is sent
// to the configured endpoint only.
func tokenClient(rt http.RoundTripper, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     rt,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// setQuery puts the auth.query parameter on u: replacing a value the URL
// already carries (a next-page URL may echo it back), appended otherwise so
// the rest of the query keeps its order.
func setQuery(u *url.URL, name, value string) {
	q := u.Query()
	if q.Has(name) {
		q.Set(name, value)
		u.RawQuery = q.Encode()
		return
	}
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += url.QueryEscape(name) + "=" + url.QueryEscape(value)
}
