package notifier

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/egress"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/internal/redact"
	"github.com/pollrelay/pollrelay/internal/version"
	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/retryafter"
)

// UserAgent is sent with every webhook.
var UserAgent = version.UserAgent()

// maxResponseBody is how much of a receiver's answer is read and kept in
// the attempt log.
const maxResponseBody = 1024

// result is the outcome of one attempt.
type result struct {
	sub, eventID string
	at           time.Time
	status       int
	latency      time.Duration
	outcome      string
	err          string
	body         string
	// retryAfter is the receiver's Retry-After, if any.
	retryAfter time.Duration
	// permanent failures skip the remaining schedule (a payload the jq
	// program can't build will not build next time either).
	permanent bool
	// canceled attempts were cut short by shutdown (or their payload's
	// evaluation by a change of the subscription) and are not recorded:
	// the delivery stays due and is sent after restart.
	canceled bool
}

// Body builds the webhook body for e: the default envelope, reshaped by the
// subscription's payload program if it has one.
func Body(ctx context.Context, e *event.Event, payload *jqexpr.Expr) ([]byte, error) {
	if e.Type == "" {
		return nil, errors.New("event has no type")
	}
	env, err := e.EnvelopeJSON()
	if err != nil {
		return nil, err
	}
	if payload == nil || payload.IsIdentity() {
		return jsForm(env)
	}
	v, err := jqexpr.Decode(env)
	if err != nil {
		return nil, err
	}
	out, err := payload.First(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if out == nil {
		// jq yields nothing or null for a path that isn't there; sending
		// "null" would look like a delivery and carry nothing.
		return nil, fmt.Errorf("payload: jq %q produced no value (null)", payload.String())
	}
	b, err := event.Canonical(out)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return jsForm(b)
}

// jsForm puts a body in the form JSON.stringify(JSON.parse(body)) gives
// back, so receivers that sign the re-serialised body (Glossi's Node
// sample does) verify the bytes that were signed.
func jsForm(b []byte) ([]byte, error) {
	out, err := event.JSCompact(b)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	return out, nil
}

// clientPolicy is what a subscription's HTTP client is built from; when
// any of it changes the client is rebuilt, so an edited subscription never
// keeps a transport made for looser rules.
type clientPolicy struct {
	insecure bool
	// guarded clients dial through egress.DialContext: API-created
	// subscriptions, whose URL came from whoever holds the API token.
	guarded      bool
	allowPrivate bool
	httpsOnly    bool
}

// policyOf returns the client policy for s. Config subscriptions are
// trusted like the config file itself and may reach anything.
func policyOf(s *Subscription) clientPolicy {
	return clientPolicy{
		insecure:     s.InsecureSkipVerify,
		guarded:      s.ManagedBy == "api",
		allowPrivate: s.AllowPrivate,
		httpsOnly:    s.RequireHTTPS,
	}
}

// newHTTPClient returns a subscription's client; rt, when set, replaces its
// transport (tests keep HTTP in process with it).
func newHTTPClient(p clientPolicy, rt http.RoundTripper) *http.Client {
	if rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		if p.insecure {
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by config
		}
		if p.guarded {
			// The check runs on the IP being connected to, after DNS, so
			// a name that resolves somewhere else at delivery time than
			// at validation (DNS rebinding) is still refused.
			tr.DialContext = egress.DialContext(p.allowPrivate)
			// Through a proxy the dialled IP would be the proxy's and
			// the check would say nothing about the destination.
			tr.Proxy = nil
		}
		rt = tr
	}
	if p.httpsOnly {
		rt = httpsOnly{rt}
	}
	return &http.Client{
		Transport: rt,
		// A redirect is a failed attempt: following it would send a signed
		// body somewhere the subscription did not name.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// send makes one attempt at delivering e to s.
func send(ctx, build context.Context, c *http.Client, s *Subscription, e *event.Event, now func() time.Time) result {
	r := result{sub: s.ID, eventID: e.ID, at: now()}
	payload := s.Payload
	if e.Kind == event.Ping && s.TestEvent == "" {
		// A vendor-shaped ping would read as a transition (CSM's shape
		// would say a session changed status): keep pollrelay's own.
		payload = nil
	}
	body, err := Body(build, e, payload)
	if err != nil && build.Err() != nil && !errors.Is(err, jqexpr.ErrLimit) {
		// Cut short by shutdown, or by the subscription being removed or
		// edited: not an outcome of the payload, so the delivery stays
		// due, to be built again (with the new payload, if edited).
		r.canceled = true
		return r
	}
	if err != nil {
		// The same program over the same envelope fails the same way:
		// retrying cannot help, so the delivery is dead at once and can
		// be redelivered once the payload is fixed.
		r.outcome, r.err, r.permanent = OutcomePayload, err.Error(), true
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, s.Method, s.URL, bytes.NewReader(body))
	if err != nil {
		r.outcome, r.err, r.permanent = OutcomePayload, "build request: "+redact.URLError(err).Error(), true
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	for k, v := range s.Headers {
		req.Header.Set(k, v)
	}
	// webhook-id lets every receiver deduplicate, whatever the signature
	// scheme; the standard signer sets it too, to the same value.
	req.Header.Set("webhook-id", e.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(r.at.Unix(), 10))
	s.Signer.Sign(req.Header, e.ID, r.at, body)

	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		r.latency = time.Since(start)
		r.err = redact.URLError(err).Error()
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			r.canceled = true
		case errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err):
			r.outcome, r.err = OutcomeTimeout, fmt.Sprintf("no response within %s", s.Timeout)
		default:
			r.outcome = OutcomeConnection
		}
		return r
	}
	defer resp.Body.Close()
	// Read past the kept length by the longest secret, so one that
	// straddles the cut is cut whole before the body is shortened.
	buf, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+int64(s.secrets.Longest())))
	// Drain a little more so the connection can be reused, but never wait
	// on a receiver that streams forever.
	io.CopyN(io.Discard, resp.Body, 64<<10)
	r.latency = time.Since(start)
	r.status = resp.StatusCode
	kept := s.secrets.Head(buf, maxResponseBody)
	r.body = strings.ToValidUTF8(kept[:min(len(kept), maxResponseBody)], "\uFFFD")
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		r.outcome = OutcomeSuccess
		return r
	}
	if rerr != nil && ctx.Err() != nil {
		r.outcome, r.err = OutcomeTimeout, fmt.Sprintf("no response within %s", s.Timeout)
		return r
	}
	r.outcome = OutcomeHTTPError
	r.err = fmt.Sprintf("status %d", resp.StatusCode)
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		// Named, because a receiver that moved (http → https, a trailing
		// slash) looks healthy in its own logs.
		r.err += " (redirects are not followed; update the subscription URL)"
	}
	if ra, ok := retryafter.Parse(resp.Header.Get("Retry-After"), r.at); ok {
		r.retryAfter = ra
	}
	return r
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errPlainHTTP fails an attempt at an http:// URL under
// delivery.require_https; the delivery retries on its schedule, so fixing
// the subscription's URL lets it through.
var errPlainHTTP = errors.New("refused: the URL is not https:// and delivery.require_https is on")

// httpsOnly refuses requests that would leave in plain text.
type httpsOnly struct{ next http.RoundTripper }

func (h httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errPlainHTTP
	}
	return h.next.RoundTrip(req)
}
