package cluster

import (
	"cmp"
	"hash/fnv"
	"maps"
	"slices"
)

// view is what one member knows when it decides: the live members with
// their configs, every lease's state, what it wants and what it holds.
type view struct {
	me      Holder
	members []Holder
	// configs is each live member's config hash per source.
	configs map[Holder]map[string]string
	leases  map[string]Lease
	// want is the leases this member's config runs, with its config
	// hash for each.
	want map[string]string
	// held is what this member holds and uses (not those it is handing
	// over).
	held map[string]bool
	// leaving is what this member is handing over.
	leaving map[string]bool
}

// acquisition is a lease to try to acquire, expecting the state seen.
type acquisition struct {
	name, config string
	prev         Lease
}

// decision is what a member does after looking at a view.
type decision struct {
	acquire []acquisition
	// rebalance are held leases to hand to members below their share.
	rebalance []string
	// drop are held leases the config no longer runs.
	drop []string
	// stale are leases the backend shows this member holding that it
	// does not know it holds (an acquire whose answer was lost): they
	// are released at once, as nothing uses them.
	stale []string
}

// plan decides which leases a member acquires and which it lets go. Each
// member decides alone from what the backend shows; the backend's
// compare-and-set on the token makes racing acquisitions safe, and the
// rules keep the members from undoing each other:
//
//   - Shares are exact: the live members sorted, each gets len(want)/n and
//     the first len(want)%n one more, so the shares add up to the leases
//     and no member holds more than its fair share plus one.
//   - A member below its share takes free leases; above it, it hands over
//     only leases a member below its share can take, so a handover never
//     strands a lease.
//   - A free lease that no member below its share may take is taken by any
//     member that may, whatever its share: a lease is never left unheld.
//   - During a rolling config change a lease goes only to members whose
//     config for its source matches the last holder's, unless no live
//     member has that config any more.
func plan(v view) decision {
	var d decision
	for name := range v.held {
		if _, ok := v.want[name]; !ok {
			d.drop = append(d.drop, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(v.leases)) {
		l := v.leases[name]
		if l.Live && l.Holder == v.me && !v.held[name] && !v.leaving[name] {
			d.stale = append(d.stale, name)
		}
	}
	members := v.members
	if !slices.Contains(members, v.me) {
		members = append(slices.Clone(members), v.me)
	}
	slices.SortFunc(members, compareHolders)
	count := map[Holder]int{}
	for _, l := range v.leases {
		if l.Live && l.Holder != v.me {
			count[l.Holder]++
		}
	}
	for name := range v.held {
		if _, ok := v.want[name]; ok {
			count[v.me]++
		}
	}
	quota := shares(members, len(v.want))
	deficit := map[Holder]int{}
	for _, m := range members {
		if m != v.me && count[m] < quota[m] {
			deficit[m] = quota[m] - count[m]
		}
	}
	// taker is a member below its share that may take name, if any.
	taker := func(name string) (Holder, bool) {
		for _, m := range members {
			if deficit[m] > 0 && v.eligible(m, name) {
				return m, true
			}
		}
		return Holder{}, false
	}
	for _, name := range slices.Sorted(maps.Keys(v.held)) {
		if count[v.me] <= quota[v.me] {
			break
		}
		if _, ok := v.want[name]; !ok {
			continue
		}
		if m, ok := taker(name); ok {
			d.rebalance = append(d.rebalance, name)
			deficit[m]--
			count[v.me]--
		}
	}
	room := quota[v.me] - count[v.me]
	for _, name := range v.order() {
		l := v.leases[name]
		if v.held[name] || v.leaving[name] || l.Live || !v.eligible(v.me, name) {
			continue
		}
		if room > 0 {
			room--
		} else if _, ok := taker(name); ok {
			continue
		}
		d.acquire = append(d.acquire, acquisition{name: name, config: v.want[name], prev: l})
	}
	return d
}

// shares gives each member its share of n leases.
func shares(members []Holder, n int) map[Holder]int {
	q := map[Holder]int{}
	if len(members) == 0 {
		return q
	}
	base, extra := n/len(members), n%len(members)
	for i, m := range members {
		q[m] = base
		if i < extra {
			q[m]++
		}
	}
	return q
}

// eligible reports whether member m may hold the lease name: its config
// runs the lease's source, with the config of the lease's last holder
// unless no live member has that config any more.
func (v view) eligible(m Holder, name string) bool {
	mine, ok := v.config(m, name)
	if !ok {
		return false
	}
	l := v.leases[name]
	if l.Config == "" || l.Config == mine {
		return true
	}
	for _, x := range v.members {
		if cfg, ok := v.config(x, name); ok && cfg == l.Config {
			return false
		}
	}
	return true
}

// config is member m's config hash for the lease's source, if it runs it.
func (v view) config(m Holder, name string) (string, bool) {
	if m == v.me {
		cfg, ok := v.want[name]
		return cfg, ok
	}
	cfg, ok := v.configs[m][sourceOf(name)]
	return cfg, ok
}

// order is the wanted leases in the order this member tries them: sorted,
// then rotated by a hash of the holder, so members starting together do
// not all race for the same leases first.
func (v view) order() []string {
	names := slices.Sorted(maps.Keys(v.want))
	if len(names) == 0 {
		return nil
	}
	h := fnv.New32a()
	h.Write([]byte(v.me.String()))
	k := int(h.Sum32() % uint32(len(names)))
	return append(names[k:], names[:k]...)
}

func compareHolders(a, b Holder) int {
	return cmp.Or(cmp.Compare(a.Member, b.Member), cmp.Compare(a.ID, b.ID))
}
