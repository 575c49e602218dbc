package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/signature"
)

const incrementalToken = "incremental-test-token-0123456789"

// sinceUpstream lists items changed at or after ?since= (epoch seconds),
// two a page; holdPage2, when set, keeps every page 2 until the test ends
// and reports it arrived.
type sinceUpstream struct {
	mu        sync.Mutex
	ts        map[string]int // id → updated_at
	status    map[string]string
	asked     []string
	holdPage2 chan struct{}
}

func (u *sinceUpstream) set(id, status string, at int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ts[id], u.status[id] = at, status
}

func (u *sinceUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cursor, _ := strconv.Atoi(q.Get("cursor"))
	since, _ := strconv.Atoi(q.Get("since"))
	u.mu.Lock()
	if cursor == 0 {
		u.asked = append(u.asked, q.Get("since"))
	}
	var ids []string
	for id, at := range u.ts {
		if at >= since {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	type item struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Updated int    `json:"updated_at"`
	}
	page := struct {
		Items []item `json:"items"`
		Next  *int   `json:"next"`
	}{Items: []item{}}
	for _, id := range ids[min(cursor, len(ids)):min(cursor+2, len(ids))] {
		page.Items = append(page.Items, item{id, u.status[id], u.ts[id]})
	}
	if cursor+2 < len(ids) {
		n := cursor + 2
		page.Next = &n
	}
	hold := u.holdPage2
	u.mu.Unlock()
	if cursor > 0 && hold != nil {
		hold <- struct{}{}
		<-r.Context().Done() // the process is killed meanwhile
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(page)
}

// TestIncrementalCrashBetweenPages: the real binary is SIGKILLed while
// page 2 of an incremental poll is in flight. Started again, it asks from
// the same watermark, and every change of both pages arrives, each once.
func TestIncrementalCrashBetweenPages(t *testing.T) {
	bin := binary(t)
	up := &sinceUpstream{ts: map[string]int{}, status: map[string]string{}}
	for i, id := range []string{"a", "b", "c", "d"} {
		up.set(id, "queued", 1000+i)
	}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	secret := signature.NewSecret()
	rc := harness.NewReceiver(t, secret)
	addr := harness.FreeAddr(t)
	path := filepath.Join(t.TempDir(), "pollrelay.yaml")
	cfg := fmt.Sprintf(`
listen: %s
api_token: %s
storage: {path: %q}
log: {level: debug, format: text}
sources:
  - name: items
    url: %s/items
    interval: 1h
    items: '.items[]'
    pagination: {next: '.next', param: cursor}
    incremental: {param: since, from: .updated_at, lookback: 5s}
    events: [{type: 'item.{current}', on: changed}]
subscriptions:
  - {name: app, url: %q, secret: %q, retry: {schedule: [100ms]}}
`, addr, incrementalToken, filepath.Join(t.TempDir(), "data"), srv.URL, rc.URL+"/hook", secret)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	api := harness.APIClient{T: t, Base: "http://" + addr, Token: incrementalToken}
	p := startProcess(t, bin, "run", "--config", path)
	harness.WaitFor(t, 30*time.Second, func() bool { return harness.Metrics(addr) != "" })
	if code := api.Do("POST", "/v1/sources/items/poll", nil, nil); code != 200 {
		t.Fatalf("the baseline poll: %d", code)
	}

	// Three changes: two on page 1, one on page 2.
	for _, id := range []string{"a", "b", "c"} {
		up.set(id, "ready", 2000)
	}
	up.mu.Lock()
	up.holdPage2 = make(chan struct{}, 1)
	held := up.holdPage2
	up.mu.Unlock()
	go func() {
		// Its answer never comes: the process is killed first.
		req, _ := http.NewRequest("POST", api.Base+"/v1/sources/items/poll", nil)
		req.Header.Set("Authorization", "Bearer "+incrementalToken)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-held:
	case <-time.After(15 * time.Second):
		t.Fatal("the incremental poll never asked for page 2")
	}
	p.kill()
	up.mu.Lock()
	up.holdPage2 = nil
	up.mu.Unlock()

	p.start()
	harness.WaitFor(t, 30*time.Second, func() bool { return harness.Metrics(addr) != "" })
	if code := api.Do("POST", "/v1/sources/items/poll", nil, nil); code != 200 {
		t.Fatalf("the poll after the crash: %d", code)
	}
	up.mu.Lock()
	asked := slices.Clone(up.asked)
	up.mu.Unlock()
	if len(asked) < 3 || asked[0] != "" || asked[1] != "998" || asked[len(asked)-1] != "998" {
		t.Errorf("since sent: %q; want a full first poll, then 998 (1003 less 5s) before and after the crash", asked)
	}
	got := map[string]map[string]int{} // item → webhook-id → deliveries
	for len(got) < 3 {
		d := rc.Next(t)
		if got[d.Env.Data.ID] == nil {
			got[d.Env.Data.ID] = map[string]int{}
		}
		got[d.Env.Data.ID][d.ID]++
		if d.Env.Type != "item.ready" {
			t.Errorf("delivered %s for %s", d.Env.Type, d.Env.Data.ID)
		}
	}
	for id, byID := range got {
		if len(byID) != 1 {
			t.Errorf("%s delivered under %d webhook-ids, want one: %v", id, len(byID), byID)
		}
	}
	var events struct {
		Data []struct {
			Type   string `json:"type"`
			ItemID string `json:"item_id"`
		}
	}
	if code := api.Do("GET", "/v1/events?limit=100", nil, &events); code != 200 || len(events.Data) != 3 {
		t.Errorf("the event log holds %d events (status %d), want the 3 changes once each: %+v", len(events.Data), code, events.Data)
	}
}
