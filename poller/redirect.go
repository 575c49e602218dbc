package poller

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/pollrelay/pollrelay/internal/redact"
)

// maxRedirects bounds how many redirects one request follows. An upstream
// that moved an endpoint needs one or two; a loop needs none.
const maxRedirects = 5

// sameOrigin reports whether u has base's scheme and host, port included
// (an absent port is the scheme's default). Requests carry the source's
// credentials — headers, basic auth, query keys — so they may go only
// where the source's own URL points, whatever a response says.
func sameOrigin(base, u *url.URL) bool {
	return strings.EqualFold(base.Scheme, u.Scheme) &&
		strings.EqualFold(base.Hostname(), u.Hostname()) &&
		portOf(base) == portOf(u)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// redirectError is a redirect the poller refused to follow. Its text
// names the target without its query values or user info, where
// credentials travel.
type redirectError struct {
	status int
	to     string // redacted
	reason string
}

func (e *redirectError) Error() string {
	return fmt.Sprintf("redirect (%d) to %s not followed: %s", e.status, e.to, e.reason)
}

// checkRedirect is the poller's http.Client.CheckRedirect. It follows a
// redirect only to the scheme and host of the request that started the
// chain (a list source's pages are all on its own host: see resolve), and
// never sends the Referer net/http adds, which would carry the previous
// URL's query (an api_key, say).
func checkRedirect(req *http.Request, via []*http.Request) error {
	req.Header.Del("Referer")
	status := 0
	if req.Response != nil {
		status = req.Response.StatusCode
	}
	refuse := func(format string, args ...any) error {
		return &redirectError{status: status, to: redact.URL(req.URL.String()), reason: fmt.Sprintf(format, args...)}
	}
	origin := via[0].URL
	switch {
	case len(via) > maxRedirects:
		return refuse("more than %d redirects", maxRedirects)
	case !strings.EqualFold(origin.Scheme, req.URL.Scheme):
		return refuse("it changes the scheme from %s to %s", origin.Scheme, req.URL.Scheme)
	case !sameOrigin(origin, req.URL):
		return refuse("it leaves the source's host %s", origin.Host)
	}
	return nil
}
