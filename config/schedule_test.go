package config

import (
	"slices"
	"strings"
	"testing"
)

const scheduleBase = "sources:\n  - {name: a, url: \"http://127.0.0.1/x\", items: \".[]\", "

// schedule: takes a cron expression and an IANA zone on a list source,
// instead of interval, with every problem named at its key.
func TestSchedule(t *testing.T) {
	c := mustParse(t, scheduleBase+"schedule: {cron: '*/5 8-18 * * MON-FRI', timezone: Europe/Berlin}}\n", noEnv)
	if sc := c.Sources[0].Schedule; sc == nil || sc.Cron != "*/5 8-18 * * MON-FRI" || sc.Timezone != "Europe/Berlin" {
		t.Errorf("schedule = %+v", sc)
	}
	mustParse(t, scheduleBase+"schedule: {cron: '@hourly'}, timeout: 30s}\n", noEnv)
	cases := map[string][]string{
		"schedule: {cron: '*/5 * *'}}":                           {`sources[0].schedule.cron: cron "*/5 * *": expected exactly 5 fields, found 3: [*/5 * *]`},
		"schedule: {cron: '0 9 * * *', timezone: Mars/Olympus}}": {`sources[0].schedule.timezone: timezone "Mars/Olympus": not an IANA time zone such as Europe/Berlin`},
		"schedule: {timezone: UTC}}":                             {`sources[0].schedule.cron: required: a cron expression such as "*/5 8-18 * * MON-FRI"`},
		"schedule: {cron: '@hourly'}, interval: 1m}":             {"sources[0].schedule: set either interval or schedule, not both"},
		"schedule: {cron: '@every 5s'}, timeout: 10s}":           {"sources[0].timeout: must be less than the shortest gap of the schedule (5s)"},
		"schedule: {cron: '0 0 30 2 *'}}":                        {"sources[0].schedule.cron: never fires"},
	}
	for tail, want := range cases {
		_, err := ParseWith([]byte(scheduleBase+tail+"\n"), noEnv)
		if err == nil {
			t.Errorf("%s: no error", tail)
			continue
		}
		if got := problemsOf(t, err); !slices.Equal(got, want) {
			t.Errorf("%s:\n  %s\nwant:\n  %s", tail, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	_, err := ParseWith([]byte("sources:\n  - {name: w, url: 'http://127.0.0.1/{id}', terminal: [done], schedule: {cron: '@hourly'}}\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "sources[0].schedule: applies to list sources") {
		t.Errorf("a watch source with a schedule: %v", err)
	}
}
