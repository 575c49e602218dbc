package notifier

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/pollrelay/pollrelay/store"
)

// A receiver that echoes the request into its error answer must not get
// the subscription's credentials (hidden by the API) into the stored
// attempt: not as sent, not base64, not percent-encoded, not at the cut.
func TestEchoedSubscriptionCredentialsAreCut(t *testing.T) {
	const token, query = "app-token-5f4e3d2c1b", "qs/secret+987"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		echo := fmt.Sprintf("%s\n%s\n%s %s\n", r.Header.Get("Authorization"), r.URL.RawQuery, u, p)
		// The second echo starts 17 bytes before the 1 KiB cut, so
		// "Bearer app-token-" would be kept and the rest cut.
		pad := strings.Repeat(".", maxResponseBody-len(echo)-17)
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(echo + pad + echo))
	}))
	defer srv.Close()
	subs := parseSubs(t, `name: app
		url: `+srv.URL+`/hook?token=`+url.QueryEscape(query)+`
		secret: `+testSecret+`
		headers: {Authorization: "Bearer `+token+`"}
		retry: {schedule: [1h]}`)
	e := start(t, t.TempDir(), subs, Options{})
	ev := e.emit("task.ready", "a")
	e.waitState("app", ev.ID, store.Retrying)
	as := e.attempts(ev.ID)
	if len(as) != 1 || as[0].Status != 500 || as[0].Body == "" {
		t.Fatalf("attempts: %+v", as)
	}
	for _, f := range []string{token, token[:10], query, url.QueryEscape(query), base64.StdEncoding.EncodeToString([]byte(token))} {
		if strings.Contains(as[0].Body, f) || strings.Contains(as[0].Error, f) {
			t.Errorf("attempt shows %q: %q", f, as[0].Body)
		}
	}
}
