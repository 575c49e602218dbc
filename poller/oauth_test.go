package poller

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// oauthWorld is an OAuth 2.0 token endpoint (host auth.test) that issues
// tokens expiring after ttl, and an upstream (host upstream.test) that
// answers 401 to any token it did not issue, that was revoked, or that
// has expired by its clock, which runs 3 s ahead of the token endpoint's
// (as clocks of two services do): a token used to its last second fails.
type oauthWorld struct {
	mu        sync.Mutex
	ttl       time.Duration
	issued    map[string]time.Time // token → expiry
	revoked   map[string]bool
	grants    []string // grant_type of each token request
	refreshes []string // refresh_token sent with each refresh grant
	failToken bool     // the token endpoint answers 500
	unauth    int      // 401s the upstream answered
	listed    int      // listings the upstream served
	n         int
}

func newOAuthWorld(ttl time.Duration) *oauthWorld {
	return &oauthWorld{ttl: ttl, issued: map[string]time.Time{}, revoked: map[string]bool{}}
}

func (w *oauthWorld) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.Host == "auth.test" {
		w.token(rw, r)
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	exp, known := w.issued[tok]
	if !ok || !known || !time.Now().Add(3*time.Second).Before(exp) || w.revoked[tok] {
		w.unauth++
		http.Error(rw, `{"error":"invalid token `+tok+`"}`, http.StatusUnauthorized)
		return
	}
	w.listed++
	fmt.Fprint(rw, `{"data":[{"id":"a","status":"ready"}]}`)
}

func (w *oauthWorld) token(rw http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	id, secret, _ := r.BasicAuth()
	if w.failToken {
		// Some token endpoints echo what they were sent.
		http.Error(rw, "token service down for "+id+":"+secret, http.StatusInternalServerError)
		return
	}
	grant := r.PostForm.Get("grant_type")
	w.grants = append(w.grants, grant)
	if id != "client-1" || (grant == "client_credentials" && secret != "s3cret-client") {
		http.Error(rw, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	w.n++
	tok := fmt.Sprintf("tok-%d", w.n)
	w.issued[tok] = time.Now().Add(w.ttl)
	out := map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(w.ttl.Seconds())}
	if grant == "refresh_token" {
		w.refreshes = append(w.refreshes, r.PostForm.Get("refresh_token"))
		out["refresh_token"] = fmt.Sprintf("refresh-%d", w.n) // rotated on every use
	}
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(out)
}

func (w *oauthWorld) snapshot() (grants []string, unauth, listed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.grants...), w.unauth, w.listed
}

const oauthSource = `  - name: s
    url: http://upstream.test/items
    interval: 10s
    items: '.data[]'
    auth: {oauth2: {token_url: 'http://auth.test/token', client_id: client-1, client_secret: s3cret-client, scopes: [read]}}
`

// Client credentials: a token is fetched on the first poll, reused while
// it lives, and replaced before it expires, so the upstream never sees an
// expired one.
func TestOAuth2ClientCredentials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 52 s tokens and a 10 s interval: a token kept to its end would
		// be used 50 s in, past its expiry on the upstream's clock.
		w := newOAuthWorld(52 * time.Second)
		h := newHarness(t, handlerTransport{w})
		h.start(sources(t, oauthSource))
		time.Sleep(10*time.Minute - time.Second)
		synctest.Wait()
		grants, unauth, listed := w.snapshot()
		h.close()
		if unauth != 0 {
			t.Errorf("the upstream refused %d requests: a token expired in use", unauth)
		}
		if listed < 55 {
			t.Errorf("%d listings in 10 minutes at a 10s interval", listed)
		}
		// A token every 50 s or so, renewed ahead of expiry: not one per poll.
		if len(grants) < 10 || len(grants) > 15 {
			t.Errorf("%d token requests in 10 minutes of 52 s tokens", len(grants))
		}
		for _, g := range grants {
			if g != "client_credentials" {
				t.Fatalf("grant_type %q", g)
			}
		}
	})
}

// A token revoked before it expires gets a 401; that poll fetches one new
// token and tries once more, and succeeds.
func TestOAuth2RefusedTokenRetriedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newOAuthWorld(time.Hour)
		h := newHarness(t, handlerTransport{w})
		h.start(sources(t, oauthSource))
		h.mustPoll("s")
		w.mu.Lock()
		w.revoked["tok-1"] = true
		w.mu.Unlock()
		h.mustPoll("s")
		grants, unauth, _ := w.snapshot()
		st := h.status("s")
		h.close()
		if len(grants) != 2 || unauth != 1 {
			t.Errorf("token requests %d, 401s %d; want 2 and 1", len(grants), unauth)
		}
		if st.LastOutcome != OutcomeSuccess {
			t.Errorf("poll after revocation: %+v", st)
		}
	})
}

// A token endpoint that fails fails the poll as auth_error, with an error
// that says so and carries no credential, and the source backs off as it
// does for any upstream failure; the upstream is not asked without one.
func TestOAuth2TokenEndpointDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newOAuthWorld(time.Hour)
		w.failToken = true
		h := newHarness(t, handlerTransport{w})
		h.start(sources(t, oauthSource))
		err := h.pollNow("s")
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		st := h.status("s")
		_, unauth, listed := w.snapshot()
		failed := counter(t, h.reg, "pollrelay_polls_total", map[string]string{"source": "s", "outcome": OutcomeAuth})
		h.close()
		if err == nil || !strings.Contains(err.Error(), "oauth2 token") || st.LastOutcome != OutcomeAuth {
			t.Fatalf("poll: %v, status %+v", err, st)
		}
		for _, secret := range []string{"s3cret-client", "client-1:"} {
			if strings.Contains(st.LastError, secret) || strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows a credential %q: %s", secret, st.LastError)
			}
		}
		if unauth+listed != 0 {
			t.Errorf("the upstream was asked %d times without a token", unauth+listed)
		}
		// Backing off: 5 minutes at a 10s interval would be 30 polls.
		if failed < 3 || failed > 12 {
			t.Errorf("%v failed polls in 5 minutes, want backoff", failed)
		}
	})
}

// The refresh-token grant sends the refresh token, and the rotated one the
// server returns from then on.
func TestOAuth2RefreshTokenRotates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newOAuthWorld(time.Minute)
		h := newHarness(t, handlerTransport{w})
		h.start(sources(t, `  - name: s
    url: http://upstream.test/items
    interval: 50s
    items: '.data[]'
    auth: {oauth2: {token_url: 'http://auth.test/token', client_id: client-1, refresh_token: refresh-0}}
`))
		time.Sleep(4 * time.Minute)
		synctest.Wait()
		h.close()
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.refreshes) < 3 || w.unauth != 0 {
			t.Fatalf("refreshes %v, 401s %d", w.refreshes, w.unauth)
		}
		for i, rt := range w.refreshes {
			if want := fmt.Sprintf("refresh-%d", i); rt != want {
				t.Errorf("refresh %d sent %q, want %q (the one the server rotated to)", i, rt, want)
			}
		}
	})
}

// auth.query sends the key as a query parameter, replaces one a next-page
// URL echoes, and never shows it in an error.
func TestQueryAuth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var seen []string
		up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.URL.RawQuery)
			mu.Unlock()
			switch r.URL.Query().Get("page") {
			case "":
				fmt.Fprint(w, `{"data":[{"id":"a"}],"next":"http://upstream.test/items?page=2&api_key=echoed"}`)
			case "2":
				fmt.Fprint(w, `{"data":[{"id":"b"}]}`)
			default:
				http.Error(w, "bad key k-9f8e7d6c in "+r.URL.String(), http.StatusInternalServerError)
			}
		})
		h := newHarness(t, handlerTransport{up})
		h.start(sources(t, `  - name: s
    url: http://upstream.test/items?limit=5
    interval: 1h
    items: '.data[]'
    pagination: {next_url: '.next'}
    auth: {query: {name: api_key, value: k-9f8e7d6c}}
  - name: bad
    url: http://upstream.test/items?page=x
    interval: 1h
    auth: {query: {name: api_key, value: k-9f8e7d6c}}
`))
		h.mustPoll("s")
		err := h.pollNow("bad")
		st := h.status("bad")
		h.close()
		mu.Lock()
		defer mu.Unlock()
		for _, want := range []string{"limit=5&api_key=k-9f8e7d6c", "api_key=k-9f8e7d6c&page=2"} {
			if !slices.Contains(seen, want) {
				t.Errorf("no request with query %q: %q", want, seen)
			}
		}
		if err == nil || strings.Contains(err.Error(), "k-9f8e7d6c") || strings.Contains(st.LastError, "k-9f8e7d6c") {
			t.Errorf("error shows the key: %v / %s", err, st.LastError)
		}
	})
}
