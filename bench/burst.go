package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pollrelay/pollrelay/internal/benchdata"
)

// A burst is one poll that changes burstItems items of about 1 KiB, listed
// in pages of burstPage, and the delivery of every event it fires.
const (
	burstItems = 20_000
	burstPage  = 2_000
)

// burstRows are the burst group's rows.
type burstRows struct {
	baseline, peak, total, rate *row
}

func newBurstRows() burstRows {
	return burstRows{
		baseline: &row{name: fmt.Sprintf("burst: RSS 3 s after a baseline of %s items of 1 KiB", thousands(burstItems)), unit: "MiB", info: "reported"},
		peak:     &row{name: fmt.Sprintf("burst: peak RSS, a poll changing %s items of 1 KiB (%d pages) and their delivery", thousands(burstItems), burstItems/burstPage), unit: "MiB", target: 150},
		total:    &row{name: "  that poll's request to its last delivery", unit: "s", info: "reported"},
		rate:     &row{name: "  its deliveries after the first", unit: "/s", info: "reported"},
	}
}

func (r burstRows) all() []*row { return []*row{r.baseline, r.peak, r.total, r.rate} }

// burstItem appends item i, padded to about 1 KiB, in state status.
func burstItem(b []byte, i int, status string) []byte {
	b = benchdata.Item(b, i, status)
	b = b[:len(b)-1] // reopen the item for its description
	b = append(b, `,"description":"`...)
	for j := range 660 {
		b = append(b, 'a'+byte((i+j)%26))
	}
	return append(b, `"}`...)
}

// burstUpstream serves the listing, page by page, in generation gen.
type burstUpstream struct {
	gen   atomic.Int64
	polls atomic.Int64 // listings served to their end
}

func (u *burstUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	status := benchdata.Statuses[u.gen.Load()%int64(len(benchdata.Statuses))]
	b := make([]byte, 0, burstPage*1100)
	b = append(b, `{"data":[`...)
	for i := (page - 1) * burstPage; i < min(page*burstPage, burstItems); i++ {
		if i > (page-1)*burstPage {
			b = append(b, ',')
		}
		b = burstItem(b, i, status)
	}
	b = append(b, "]}"...)
	if (page-1)*burstPage >= burstItems {
		u.polls.Add(1) // the short page that ends the listing
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// burst runs the binary once: a baseline of burstItems items, then a poll
// in which every one of them changes, delivered to a loopback receiver.
// The peak is VmHWM from just before that poll (reset through
// /proc/<pid>/clear_refs) to the last delivery.
func burst(bin, dir string, rows burstRows) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	up := &burstUpstream{}
	upSrv, err := serve(up)
	if err != nil {
		return err
	}
	defer upSrv.Close()
	var delivered atomic.Int64
	done := make(chan struct{})
	recv, err := receiver(func() {
		if delivered.Add(1) == burstItems {
			close(done)
		}
	})
	if err != nil {
		return err
	}
	defer recv.Close()
	port, err := freePort()
	if err != nil {
		return err
	}
	pages := fmt.Sprintf("{page_param: page, limit_param: per_page, limit: %d, max_pages: 100}", burstPage)
	cmd, err := startBinary(bin, dir, videosConfig(port, dir, upSrv.Addr(), pages, recv.Addr()))
	if err != nil {
		return err
	}
	defer stopBinary(cmd)
	pid := cmd.Process.Pid
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := pollWhenReady(base, "videos"); err != nil {
		return err
	}
	if err := until(30*time.Second, func() bool { return up.polls.Load() == 1 }); err != nil {
		return errors.New("no baseline within 30s")
	}
	time.Sleep(3 * time.Second)
	kb, err := rssKiB(pid)
	if err != nil {
		return err
	}
	rows.baseline.runs = append(rows.baseline.runs, float64(kb)/1024)

	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS: %w", err)
	}
	up.gen.Add(1)
	t0 := time.Now()
	if err := pollWhenReady(base, "videos"); err != nil {
		return err
	}
	if err := until(60*time.Second, func() bool { return delivered.Load() > 0 }); err != nil {
		return errors.New("the burst's poll delivered nothing within 60s")
	}
	t1 := time.Now()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return fmt.Errorf("%d of %d deliveries within 5 minutes", delivered.Load(), burstItems)
	}
	t2 := time.Now()
	hwm, err := statusKiB(pid, "VmHWM:")
	if err != nil {
		return err
	}
	rows.peak.runs = append(rows.peak.runs, float64(hwm)/1024)
	rows.total.runs = append(rows.total.runs, t2.Sub(t0).Seconds())
	rows.rate.runs = append(rows.rate.runs, burstItems/t2.Sub(t1).Seconds())
	return nil
}

// until polls cond every few milliseconds until it holds or d passes.
func until(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// statusKiB is a field in kB from /proc/<pid>/status, such as "VmHWM:".
func statusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
