package poller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/oauth2"
	"golang.org/x/time/rate"

	"github.com/pollrelay/pollrelay/internal/redact"
	"github.com/pollrelay/pollrelay/internal/version"
	"github.com/pollrelay/pollrelay/retryafter"
)

// Outcomes label pollrelay_polls_total and name why a poll failed.
const (
	OutcomeSuccess     = "success"
	OutcomeNotModified = "not_modified"
	OutcomeHTTPError   = "http_error"
	OutcomeNetwork     = "network_error"
	OutcomeTooLarge    = "too_large"
	OutcomeDecode      = "decode_error"
	OutcomeExtract     = "extract_error"
	OutcomeStore       = "store_error"
	// OutcomeFenced is a poll whose writes the store refused because the
	// source's lease had passed to another holder: discarded, not
	// committed.
	OutcomeFenced = "fenced"
	// OutcomeRedirect is a redirect off the source's scheme and host (or
	// one too many): refused, so no credential follows it.
	OutcomeRedirect = "redirect_refused"
)

// Outcomes lists every outcome, so metrics can create label values up front.
var Outcomes = []string{
	OutcomeSuccess, OutcomeNotModified, OutcomeHTTPError, OutcomeNetwork,
	OutcomeTooLarge, OutcomeDecode, OutcomeExtract, OutcomeStore, OutcomeAuth, OutcomeRedirect, OutcomeFenced,
}

// PollError is a failed poll with the reason that labels it.
type PollError struct {
	Outcome string
	Status  int
	// RetryAfter is set when the upstream asked to be left alone.
	RetryAfter time.Duration
	Err        error
}

func (e *PollError) Error() string { return e.Err.Error() }
func (e *PollError) Unwrap() error { return e.Err }

func pollErr(outcome string, format string, args ...any) *PollError {
	return &PollError{Outcome: outcome, Err: fmt.Errorf(format, args...)}
}

// response is one fetched page.
type response struct {
	status int
	header http.Header
	body   []byte
}

// fetcher performs one source's HTTP requests.
type fetcher struct {
	src    *compiled
	client *retryablehttp.Client
	// limiter holds requests to the source's `rate`; nil = unlimited.
	limiter *rate.Limiter
	// tokens is the OAuth 2.0 access token of auth.oauth2; nil without.
	tokens *tokens
	log    *slog.Logger
	// secrets are cut from a quoted body before it is shortened, so no
	// credential an upstream echoes is left half shown at the cut.
	secrets *redact.Set
}

// newFetcher builds a source's HTTP client over rt, a transport shared by
// the sources with the same TLS setting (see transports); nil builds one
// for this source alone.
func newFetcher(src *compiled, log *slog.Logger, onResponse func(code int), rt http.RoundTripper) *fetcher {
	if src.InsecureSkipVerify {
		log.Warn("TLS certificate verification is off for this source (insecure_skip_verify)")
	}
	if rt == nil {
		rt = newTransport(transportKey(src.cfg()))
	}
	hc := &http.Client{Transport: rt, CheckRedirect: checkRedirect}
	f := &fetcher{src: src, log: log, secrets: sourceSecrets(src.cfg())}
	if src.Auth != nil && src.Auth.OAuth2 != nil {
		f.tokens = newTokens(src.Auth.OAuth2, tokenClient(hc.Transport, src.Timeout), time.Now)
	}
	if src.rate > 0 {
		// A burst of one: `rate: 5/s` never sends two requests closer than
		// 200ms, so the upstream sees the budget in any window it measures.
		f.limiter = rate.NewLimiter(rate.Limit(src.rate), 1)
	}
	c := &retryablehttp.Client{
		HTTPClient:   hc,
		Logger:       redactingLogger{log, f.secrets},
		RetryWaitMin: 250 * time.Millisecond,
		RetryWaitMax: 2 * time.Second,
		RetryMax:     2,
		CheckRetry:   checkRetry,
		Backoff:      quickBackoff,
		// Without it the last response is dropped and its status lost.
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		ResponseLogHook: func(_ retryablehttp.Logger, r *http.Response) {
			onResponse(r.StatusCode)
		},
		RequestLogHook: func(_ retryablehttp.Logger, _ *http.Request, retry int) {
			// A quick retry spends the rate budget too. It is not held back
			// (its wait would eat into the request's timeout); the debit
			// delays the requests after it instead.
			if retry > 0 && f.limiter != nil {
				f.limiter.Reserve()
			}
		},
	}
	f.client = c
	return f
}

// checkRetry retries transient failures quickly, but not a 429/503 whose
// Retry-After is longer than a quick retry: that pauses the whole source
// instead, and DefaultBackoff would otherwise sleep for as long as the
// upstream asks, uncapped.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if _, ok := errors.AsType[*redirectError](err); ok {
		return false, nil // the same answer again
	}
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := retryafter.Parse(resp.Header.Get("Retry-After"), time.Now()); ok && d > 2*time.Second {
			return false, nil
		}
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// quickBackoff is DefaultBackoff held to its max: DefaultBackoff returns a
// 429/503's Retry-After as it reads it, uncapped (and wrapped when huge),
// and checkRetry's reading is the only one that decides a pause.
func quickBackoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	return min(max(retryablehttp.DefaultBackoff(lo, hi, attempt, resp), 0), hi)
}

// do performs one request and reads the body up to the source's cap. With
// auth.oauth2 a 401 gets one more try with a fresh token: the cached one
// may have been revoked before it expired.
func (f *fetcher) do(ctx context.Context, rawURL string, reqBody []byte, hdr http.Header) (*response, error) {
	if f.tokens == nil {
		return f.once(ctx, rawURL, reqBody, hdr, nil)
	}
	for try := 0; ; try++ {
		tok, err := f.tokens.Token(ctx)
		if err != nil {
			return nil, err
		}
		r, err := f.once(ctx, rawURL, reqBody, hdr, tok)
		if pe, ok := errors.AsType[*PollError](err); ok && pe.Status == http.StatusUnauthorized && try == 0 {
			f.tokens.Refused(tok)
			continue
		}
		if err == nil {
			return r, nil
		}
		// An upstream may echo the token it was sent into an error page.
		access := &redact.Set{}
		access.AddHeader("Bearer " + tok.AccessToken)
		return r, redactError(err, access)
	}
}

// once performs one request, with tok as its credentials when set. It
// waits for the rate budget first, outside the request's timeout: a slow
// budget is not a slow upstream.
func (f *fetcher) once(ctx context.Context, rawURL string, reqBody []byte, hdr http.Header, tok *oauth2.Token) (*response, error) {
	if f.limiter != nil {
		if err := f.limiter.Wait(ctx); err != nil {
			return nil, pollErr(OutcomeNetwork, "wait for rate budget: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.src.Timeout)
	defer cancel()
	var body any
	if reqBody != nil {
		body = reqBody
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, f.src.Method, rawURL, body)
	if err != nil {
		return nil, pollErr(OutcomeNetwork, "build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	if reqBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range f.src.Headers {
		req.Header.Set(k, v)
	}
	if a := f.src.Auth; a != nil {
		switch {
		case a.Bearer != "":
			req.Header.Set("Authorization", "Bearer "+a.Bearer)
		case a.Basic != nil:
			req.SetBasicAuth(a.Basic.Username, a.Basic.Password)
		case a.Query != nil:
			setQuery(req.URL, a.Query.Name, a.Query.Value)
		}
	}
	if tok != nil {
		tok.SetAuthHeader(req.Request)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := f.client.Do(req)
	if re, ok := errors.AsType[*redirectError](err); ok {
		return nil, &PollError{Outcome: OutcomeRedirect, Status: re.status,
			Err: fmt.Errorf("%s %s: %w", f.src.Method, redact.URL(rawURL), re)}
	}
	if err != nil {
		return nil, pollErr(OutcomeNetwork, "%s %s: %w", f.src.Method, redact.URL(rawURL), redact.URLError(err))
	}
	defer resp.Body.Close()
	limit := f.src.MaxBodyBytes
	data, err := readBody(resp, limit)
	if err != nil {
		return nil, pollErr(OutcomeNetwork, "%s %s: read body: %w", f.src.Method, redact.URL(rawURL), redact.URLError(err))
	}
	if int64(len(data)) > limit {
		return nil, &PollError{Outcome: OutcomeTooLarge, Status: resp.StatusCode,
			Err: fmt.Errorf("%s %s: response larger than %d bytes (max_body_bytes)", f.src.Method, redact.URL(rawURL), limit)}
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: data}
	if resp.StatusCode == http.StatusNotModified {
		return r, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		pe := &PollError{Outcome: OutcomeHTTPError, Status: resp.StatusCode,
			Err: fmt.Errorf("%s %s: status %d: %s", f.src.Method, redact.URL(rawURL), resp.StatusCode, f.snippet(data))}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			pe.RetryAfter = f.pause(resp.Header.Get("Retry-After"))
		}
		return nil, pe
	}
	return r, nil
}

// readBody reads up to limit+1 bytes of a response. A body whose length
// is announced is read into one buffer of that size: io.ReadAll's
// doubling held up to twice a large listing, in copies, while it read.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	r := io.LimitReader(resp.Body, limit+1)
	if n := resp.ContentLength; n >= 0 && n <= limit {
		buf := bytes.NewBuffer(make([]byte, 0, n+bytes.MinRead))
		_, err := buf.ReadFrom(r)
		return buf.Bytes(), err
	}
	return io.ReadAll(r)
}

// UserAgent is sent on every request pollrelay makes.
var UserAgent = version.UserAgent()

const snippetLen = 256

// snippetCut ends a Snippet that was shortened: the closing quote and "…".
const snippetCut = `"…`

// Snippet quotes the start of a body for an error message: at most 256
// bytes, so a log line stays readable and a huge error page can't flood it.
func Snippet(b []byte) string {
	const n = snippetLen
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "…"
	}
	return strconv.Quote(string(b))
}

// snippet is Snippet of a body with the source's secrets cut first, far
// enough past where Snippet cuts that none straddles the cut.
func (f *fetcher) snippet(b []byte) string {
	return Snippet([]byte(f.secrets.Head(bytes.TrimSpace(b), snippetLen)))
}

// redactingLogger gives go-retryablehttp an slog logger that never sees a
// raw URL or one of the source's credentials (an upstream may echo them,
// in a redirect's Location say), and stays quiet about each request: its
// "request failed" comes once per attempt, and the poll that gave up is
// logged once by the loop (a run of the same failure once, then its
// recovery), so attempts are debug detail.
type redactingLogger struct {
	l       *slog.Logger
	secrets *redact.Set
}

func (r redactingLogger) Error(msg string, kv ...any) { r.l.Debug(msg, redactKV(kv, r.secrets)...) }
func (r redactingLogger) Warn(msg string, kv ...any)  { r.l.Debug(msg, redactKV(kv, r.secrets)...) }
func (r redactingLogger) Info(msg string, kv ...any)  { r.l.Debug(msg, redactKV(kv, r.secrets)...) }
func (r redactingLogger) Debug(msg string, kv ...any) {}

func redactKV(kv []any, secrets *redact.Set) []any {
	out := make([]any, 0, len(kv))
	for i := 0; i+1 < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		switch k {
		case "url":
			if s, ok := v.(string); ok {
				v = redact.URL(s)
			} else if u, ok := v.(*url.URL); ok {
				v = redact.URL(u.String())
			}
		case "error":
			if e, ok := v.(error); ok {
				v = secrets.String(redact.URLError(e).Error())
			}
		default:
			if s, ok := v.(string); ok {
				v = secrets.String(s)
			}
		}
		out = append(out, k, v)
	}
	return out
}

// MaxUpstreamPause caps how far an upstream can push a source's next poll
// away, by X-Poll-Interval or by a 429/503's Retry-After: a broken or
// hostile upstream must not put a source to sleep for days (Retry-After:
// 99999999 is three years).
const MaxUpstreamPause = 24 * time.Hour

// pause reads a 429/503's Retry-After, capped at MaxUpstreamPause; each
// response whose ask is over the cap is logged.
func (f *fetcher) pause(v string) time.Duration {
	d, ok := retryafter.Parse(v, time.Now())
	if !ok {
		return 0
	}
	d, capped := retryafter.Cap(d, MaxUpstreamPause)
	if capped {
		if len(v) > 64 {
			v = v[:64] + "…"
		}
		f.log.Warn("upstream asked to pause longer than pollrelay waits; pausing for the cap",
			"retry_after", v, "cap", MaxUpstreamPause.String())
	}
	return d
}

// pollInterval reads X-Poll-Interval (seconds, as GitHub sends it): the
// least time the upstream wants between polls, capped at MaxUpstreamPause.
// 0 when absent or invalid.
func pollInterval(h http.Header) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Poll-Interval")))
	if errors.Is(err, strconv.ErrRange) && s > 0 {
		return MaxUpstreamPause
	}
	if err != nil || s <= 0 {
		return 0
	}
	if int64(s) > int64(MaxUpstreamPause/time.Second) {
		return MaxUpstreamPause
	}
	return time.Duration(s) * time.Second
}

// conditional returns the If-None-Match / If-Modified-Since headers for
// stored validators, or nil when there are none.
func conditional(etag, lastModified string) http.Header {
	if etag == "" && lastModified == "" {
		return nil
	}
	h := http.Header{}
	if etag != "" {
		h.Set("If-None-Match", etag)
	}
	if lastModified != "" {
		h.Set("If-Modified-Since", lastModified)
	}
	return h
}

// watchURL fills a watch source's {id}, escaped for where it stands: a
// path segment (so an id can't climb out of it with a slash) or a query.
func watchURL(tmpl, id string) string {
	i := strings.Index(tmpl, "{id}")
	if q := strings.IndexByte(tmpl, '?'); q >= 0 && q < i {
		return strings.ReplaceAll(tmpl, "{id}", url.QueryEscape(id))
	}
	return strings.ReplaceAll(tmpl, "{id}", url.PathEscape(id))
}

// watchBody fills {id} in a request body (a GraphQL query's variables,
// say) as the inside of a JSON string.
func watchBody(body []byte, id string) []byte {
	if body == nil || !bytes.Contains(body, []byte("{id}")) {
		return body
	}
	enc, _ := json.Marshal(id) // a string always encodes
	return bytes.ReplaceAll(body, []byte("{id}"), enc[1:len(enc)-1])
}

// validatorsFor names what a stored ETag was received for: everything that
// shapes the request or its extraction. A hash, so no header value (it may
// be a token) is stored.
func validatorsFor(src *compiled) string {
	h := sha256.New()
	put := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	put(src.URL)
	put(src.Method)
	put(string(src.body))
	keys := make([]string, 0, len(src.Headers))
	for k := range src.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		put(k)
		put(src.Headers[k])
	}
	if a := src.Auth; a != nil {
		put(a.Bearer)
		if a.Basic != nil {
			put(a.Basic.Username)
			put(a.Basic.Password)
		}
		if o := a.OAuth2; o != nil {
			// Another client may see another account; a new token for
			// the same client sees the same listing.
			put(o.TokenURL)
			put(o.ClientID)
			put(strings.Join(o.Scopes, " "))
		}
		if q := a.Query; q != nil {
			put(q.Name)
			put(q.Value)
		}
	}
	put(src.Items)
	put(src.ID)
	put(src.State)
	put(src.Object)
	return hex.EncodeToString(h.Sum(nil)[:8])
}
