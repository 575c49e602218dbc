package main

import (
	"fmt"
	"os"
	"text/tabwriter"
)

// growth prints how cost grows: a poll's wall time, CPU per change and
// peak RSS for listings of 10k, 100k and 1M items with 1% and 100%
// changed, and the delivery rate and CPU per delivery for 1, 10 and 100
// subscriptions at max_in_flight 1, 16 and 64. Each listing case runs in
// a process of its own, so its peak RSS is its own.
func growth() error {
	type listing struct {
		items, pct                       int
		ms, cpu, cpuPerChange, rss, anon row
	}
	var cases []*listing
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		for _, pct := range []int{1, 100} {
			c := &listing{items: n, pct: pct}
			name := fmt.Sprintf("BenchmarkGrowth/items=%d/changed=%d", n, pct)
			fmt.Fprintf(os.Stderr, "growth: %d items, %d%% changed\n", n, pct)
			err := gotest("./poller/", fmt.Sprintf("BenchmarkGrowth$/^items=%d$/^changed=%d$", n, pct), "1x", 1, map[string]metric{
				name:          {&c.ms, "ms/poll"},
				name + "#":    {&c.cpuPerChange, "cpu-µs/change"},
				name + "##":   {&c.rss, "rss-MiB"},
				name + "###":  {&c.cpu, "cpu-ms/poll"},
				name + "####": {&c.anon, "anon-MiB"},
			})
			if err != nil {
				return err
			}
			cases = append(cases, c)
		}
	}
	type delivery struct {
		subs, inFlight int
		rate, cpu      row
	}
	var dels []*delivery
	for _, subs := range []int{1, 10, 100} {
		for _, inFlight := range []int{1, 16, 64} {
			d := &delivery{subs: subs, inFlight: inFlight}
			name := fmt.Sprintf("BenchmarkGrowthDeliveries/subs=%d/in_flight=%d", subs, inFlight)
			fmt.Fprintf(os.Stderr, "growth: %d subscriptions, max_in_flight %d\n", subs, inFlight)
			err := gotest("./notifier/", fmt.Sprintf("BenchmarkGrowthDeliveries$/^subs=%d$/^in_flight=%d$", subs, inFlight), "20000x", 1, map[string]metric{
				name:       {&d.rate, "deliveries/s"},
				name + "#": {&d.cpu, "cpu-µs/delivery"},
			})
			if err != nil {
				return err
			}
			dels = append(dels, d)
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nlisting\tchanged\ttime per poll\tCPU per poll\tCPU per changed item\tpeak RSS\tof it, the process's own")
	for _, c := range cases {
		fmt.Fprintf(tw, "%d items\t%d%%\t%s ms\t%s ms\t%s µs\t%s MiB\t%s MiB\n", c.items, c.pct, num(c.ms.median()), num(c.cpu.median()), num(c.cpuPerChange.median()), num(c.rss.median()), num(c.anon.median()))
	}
	fmt.Fprintln(tw, "\nsubscriptions\tmax_in_flight\tdeliveries/s\tCPU per delivery\t")
	for _, d := range dels {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s µs\t\n", d.subs, d.inFlight, num(d.rate.median()), num(d.cpu.median()))
	}
	return tw.Flush()
}
