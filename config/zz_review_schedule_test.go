package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestZZReviewSchedule(t *testing.T) {
	for _, tail := range []string{
		"schedule: {cron: '@every 5s'}}",
		"schedule: {cron: '@every 500ms'}, timeout: 400ms}",
		"schedule: {cron: '@every 0s'}, timeout: 400ms}",
		"schedule: {cron: '@every -5s'}, timeout: 400ms}",
		"schedule: {cron: '@every 1500ms'}, timeout: 1200ms}",
		"schedule: {cron: '@hourly'}, interval: 15s}",
		"schedule: {cron: '0 9 * * *'}, incremental: {param: since, from: .u}}",
		"schedule: {cron: '0 9 * * *', timezone: Local}}",
		"schedule: {cron: '0 9 * * *', timezone: '  Europe/Berlin'}}",
	} {
		_, err := ParseWith([]byte(scheduleBase+tail+"\n"), noEnv)
		fmt.Printf("%-70s -> %v\n", tail, err)
	}
}

func BenchmarkZZReviewValidate10k(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("sources:\n")
	for i := range 10000 {
		fmt.Fprintf(&sb, "  - {name: s%d, url: 'http://127.0.0.1/x', items: '.[]', schedule: {cron: '*/5 8-18 * * MON-FRI', timezone: Europe/Berlin}}\n", i)
	}
	data := []byte(sb.String())
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := ParseWith(data, noEnv); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/load")
	}
}
