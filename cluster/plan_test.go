package cluster

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

func holder(name string) Holder { return Holder{Member: name, ID: "x"} }

// wantN is n list-source leases with config hash cfg.
func wantN(n int, cfg string) map[string]string {
	w := map[string]string{}
	for i := range n {
		w[SourceLease(fmt.Sprintf("s%02d", i))] = cfg
	}
	return w
}

// configsOf is the per-source configs a member with want runs.
func configsOf(want map[string]string) map[string]string {
	out := map[string]string{}
	for n, c := range want {
		out[sourceOf(n)] = c
	}
	return out
}

func names(a []acquisition) []string {
	var out []string
	for _, x := range a {
		out = append(out, x.name)
	}
	slices.Sort(out)
	return out
}

func TestPlanTakesItsShareOfFreeLeases(t *testing.T) {
	a, b, c := holder("a"), holder("b"), holder("c")
	want := wantN(10, "h")
	for _, tc := range []struct {
		me   Holder
		take int
	}{{a, 4}, {b, 3}, {c, 3}} {
		v := view{me: tc.me, members: []Holder{c, b, a}, want: want, leases: map[string]Lease{},
			configs: map[Holder]map[string]string{a: configsOf(want), b: configsOf(want), c: configsOf(want)}}
		d := plan(v)
		if len(d.acquire) != tc.take || len(d.rebalance) != 0 {
			t.Errorf("%s: acquires %d, rebalances %v; want %d and none", tc.me.Member, len(d.acquire), d.rebalance, tc.take)
		}
	}
}

func TestPlanHandsOverOnlyWhatAnotherCanTake(t *testing.T) {
	a, b := holder("a"), holder("b")
	want := wantN(6, "h")
	held := map[string]bool{}
	leases := map[string]Lease{}
	for n := range want {
		held[n] = true
		leases[n] = Lease{Name: n, Holder: a, Token: 1, Config: "h", Live: true}
	}
	v := view{me: a, members: []Holder{a, b}, want: want, held: held, leases: leases,
		configs: map[Holder]map[string]string{b: configsOf(want)}}
	if d := plan(v); len(d.rebalance) != 3 || len(d.acquire) != 0 {
		t.Errorf("with b on the same config: rebalance %v, acquire %v; want 3 and none", d.rebalance, names(d.acquire))
	}
	// b runs another config for every source: nothing it may take, so a
	// keeps everything.
	v.configs[b] = configsOf(wantN(6, "other"))
	if d := plan(v); len(d.rebalance) != 0 {
		t.Errorf("with b on another config: rebalance %v; want none", d.rebalance)
	}
	// b does not run the sources at all.
	v.configs[b] = map[string]string{}
	if d := plan(v); len(d.rebalance) != 0 {
		t.Errorf("with b not running the sources: rebalance %v; want none", d.rebalance)
	}
}

func TestPlanNeverStrandsAFreeLease(t *testing.T) {
	a, b := holder("a"), holder("b")
	want := wantN(4, "h")
	leases := map[string]Lease{}
	held := map[string]bool{}
	// a and b hold two each (their shares); one more source was added and
	// its lease is free.
	i := 0
	for _, n := range slices.Sorted(maps.Keys(want)) {
		h := a
		if i%2 == 1 {
			h = b
		}
		leases[n] = Lease{Name: n, Holder: h, Token: 1, Config: "h", Live: true}
		if h == a {
			held[n] = true
		}
		i++
	}
	extra := SourceLease("zz")
	want[extra] = "h"
	v := view{me: a, members: []Holder{a, b}, want: want, held: held, leases: leases,
		configs: map[Holder]map[string]string{b: configsOf(want)}}
	// 5 leases: a's share is 3, so a takes it.
	if d := plan(v); !slices.Equal(names(d.acquire), []string{extra}) {
		t.Errorf("a acquires %v; want %s", names(d.acquire), extra)
	}
	// Seen from b (share 2, holding 2), a is below its share and takes
	// it: b leaves it.
	vb := v
	vb.me, vb.want, vb.held = b, want, map[string]bool{}
	for n, l := range leases {
		if l.Holder == b {
			vb.held[n] = true
		}
	}
	vb.configs = map[Holder]map[string]string{a: configsOf(want)}
	if d := plan(vb); len(d.acquire) != 0 {
		t.Errorf("b acquires %v; want nothing, a is below its share", names(d.acquire))
	}
	// If a does not run that source, b takes it beyond its share.
	cfgA := configsOf(want)
	delete(cfgA, "zz")
	vb.configs[a] = cfgA
	if d := plan(vb); !slices.Equal(names(d.acquire), []string{extra}) {
		t.Errorf("b acquires %v; want %s, no one else may hold it", names(d.acquire), extra)
	}
}

func TestPlanRollingConfigChange(t *testing.T) {
	oldM, newM := holder("old"), holder("new")
	name := SourceLease("s")
	free := map[string]Lease{name: {Name: name, Holder: holder("gone"), Token: 7, Config: "v1", Released: ReasonReleased}}
	v := view{me: newM, members: []Holder{oldM, newM}, want: map[string]string{name: "v2"}, leases: free,
		configs: map[Holder]map[string]string{oldM: {"s": "v1"}}}
	if d := plan(v); len(d.acquire) != 0 {
		t.Errorf("new config acquires %v while a member runs the holder's config", names(d.acquire))
	}
	v.members = []Holder{newM}
	d := plan(v)
	if len(d.acquire) != 1 || d.acquire[0].prev.Token != 7 || d.acquire[0].config != "v2" {
		t.Errorf("with no member left on the holder's config: %+v; want the lease expecting token 7", d.acquire)
	}
}

func TestPlanDropsAndReleasesStale(t *testing.T) {
	me := holder("a")
	gone, stale := SourceLease("gone"), SourceLease("stale")
	v := view{me: me, members: []Holder{me}, want: map[string]string{stale: "h"},
		held: map[string]bool{gone: true},
		leases: map[string]Lease{
			gone:  {Name: gone, Holder: me, Token: 2, Live: true},
			stale: {Name: stale, Holder: me, Token: 3, Live: true},
		}}
	d := plan(v)
	if !slices.Equal(d.drop, []string{gone}) || !slices.Equal(d.stale, []string{stale}) || len(d.acquire) != 0 {
		t.Errorf("drop %v stale %v acquire %v; want [%s] [%s] none", d.drop, d.stale, names(d.acquire), gone, stale)
	}
}

// TestPlanConverges runs members' plans against one table of leases, as
// the backend would apply them, through joins and a departure: every
// round ends with each lease held once and the shares within one.
func TestPlanConverges(t *testing.T) {
	want := map[string]string{}
	for i := range 3 {
		want[SourceLease(fmt.Sprintf("list%d", i))] = "h"
	}
	maps.Copy(want, leases([]Source{{Name: "w", Sharded: true, Config: "h"}}))
	leasesT := map[string]Lease{}
	var members []Holder
	settle := func(stage string) {
		t.Helper()
		for round := range 10 {
			changed := false
			for _, me := range members {
				v := view{me: me, members: members, want: want, leases: leasesT, held: map[string]bool{},
					configs: map[Holder]map[string]string{}}
				for _, m := range members {
					v.configs[m] = configsOf(want)
				}
				for n, l := range leasesT {
					if l.Live && l.Holder == me {
						v.held[n] = true
					}
				}
				d := plan(v)
				for _, n := range slices.Concat(d.rebalance, d.drop) {
					l := leasesT[n]
					l.Live, l.Released = false, ReasonRebalanced
					leasesT[n] = l
					changed = true
				}
				for _, a := range d.acquire {
					if l := leasesT[a.name]; !l.Live && l.Token == a.prev.Token {
						leasesT[a.name] = Lease{Name: a.name, Holder: me, Token: l.Token + 1, Config: a.config, Live: true}
						changed = true
					}
				}
			}
			if !changed {
				t.Logf("%s: settled after %d rounds", stage, round)
				break
			}
		}
		count := map[Holder]int{}
		for n := range want {
			l := leasesT[n]
			if !l.Live || !slices.Contains(members, l.Holder) {
				t.Fatalf("%s: %s not held by a live member: %+v", stage, n, l)
			}
			count[l.Holder]++
		}
		lo, hi := len(want), 0
		for _, m := range members {
			lo, hi = min(lo, count[m]), max(hi, count[m])
		}
		if hi-lo > 1 {
			t.Fatalf("%s: shares %v; want within one", stage, count)
		}
	}
	for _, m := range []string{"a", "b", "c"} {
		members = append(members, holder(m))
		settle("join " + m)
	}
	// b dies: its leases expire.
	members = []Holder{holder("a"), holder("c")}
	for n, l := range leasesT {
		if l.Holder == holder("b") {
			l.Live = false
			leasesT[n] = l
		}
	}
	settle("b gone")
}
