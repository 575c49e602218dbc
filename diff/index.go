package diff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// Index is a compact copy of what a comparison needs of a source's stored
// items: each id, its state, whether a state is settling and when a
// stalled rule would next fire. A listing is filtered through it page by
// page (Filter): an item seen again in its stored state, with nothing
// pending, is only marked seen and dropped, so neither the listing nor the
// stored records are ever held whole. Comparing a million items that way
// takes tens of MiB where maps of records and observations took most of a
// GiB.
//
// Only the source's own poll loop writes its items, so an index read after
// its previous poll finished is what Apply would read itself.
type Index struct {
	done chan struct{}
	err  error
	src  *Source

	// ids holds the stored ids in bytewise order, as every backend scans
	// them, item i being ids[ends[i-1]:ends[i]].
	ids  []byte
	ends []uint32
	// state[i] indexes states: a listing has few distinct states, so each
	// is kept once.
	state  []uint32
	states []json.RawMessage
	// pending marks items with an unsettled state.
	pending bitset
	// fireAt is when the earliest stalled rule not yet fired for item i
	// fires (Unix nanoseconds); nil when the source has no stalled rules.
	fireAt []int64

	seen bitset
	// added are the ids seen this poll that are not stored, to recognise a
	// repeat of one.
	added map[string]struct{}
	// next is where the last id was found plus one: listings are often in
	// id order, and then the next id is found without a search.
	next     int
	filtered bool
	// at is the time the last page was filtered at: Apply judges a
	// filtered listing at it (see Poll.Now).
	at   time.Time
	dups duplicates
	// over are the items Filter skipped: ids too long to store, and those
	// in broken.
	over skipped
	// broken are the stored items whose record cannot be decoded, with why:
	// their polls skip them rather than fail.
	broken map[string]string

	// baseline is set when the poll records the source's baseline without
	// events: its new items may then be stored ahead (StoreNew); baselined
	// when the source's baseline is recorded.
	baseline, baselined bool
	// ahead is what was written ahead of Apply (StoreNew, ApplyAhead),
	// for Apply's result: its events without their bodies. early counts
	// the new items among it, and aheadPending is set when one of its
	// items was left settling.
	ahead        Result
	early        int
	aheadPending bool
	// aheadAt is when ApplyAhead judged what it wrote; the rest of the
	// poll is judged then too (nil: nothing was).
	aheadAt *time.Time
}

type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) get(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }

// grow makes room for n bits.
func (b *bitset) grow(n int) {
	if w := (n + 63) / 64; w > len(*b) {
		*b = append(*b, make(bitset, w-len(*b))...)
	}
}

// LoadIndex starts reading src's stored items into an index; sizeHint is
// how many are expected. It reads in the background because a poll
// fetches and parses its listing meanwhile, and on a large listing each
// takes about as long as the other. Wait (or Apply, given the index)
// collects it.
func LoadIndex(st store.Store, src *Source, sizeHint int) *Index {
	x := &Index{done: make(chan struct{}), src: src}
	go func() {
		defer close(x.done)
		x.err = x.load(st, sizeHint)
	}()
	return x
}

func (x *Index) load(st store.Store, sizeHint int) error {
	x.ids = make([]byte, 0, sizeHint*16)
	x.ends = make([]uint32, 0, sizeHint)
	x.state = make([]uint32, 0, sizeHint)
	stalls := x.src.Stalls()
	if stalls != nil {
		x.fireAt = make([]int64, 0, sizeHint)
	}
	rules := sortedKeys(stalls)
	known := map[string]uint32{}
	err := st.View(func(t store.Txn) error {
		ss, err := t.SourceState(x.src.Name)
		if err != nil {
			return err
		}
		x.baseline, x.baselined = !ss.Baselined && !x.src.EmitExisting, ss.Baselined
		return t.ScanItemHeads(x.src.Name, func(id []byte, it *store.Item) error {
			i := len(x.ends)
			if len(x.ids)+len(id) > math.MaxUint32 {
				return fmt.Errorf("more ids than an index holds")
			}
			x.ids = append(x.ids, id...)
			x.ends = append(x.ends, uint32(len(x.ids)))
			s, ok := known[string(it.State)]
			if !ok {
				s = uint32(len(x.states))
				x.states = append(x.states, bytes.Clone(it.State))
				// A source whose states are unique to each item (objects
				// with a timestamp, say) would make the map cost more than
				// it saves.
				if len(known) < 4096 {
					known[string(it.State)] = s
				}
			}
			x.state = append(x.state, s)
			if it.Pending != nil {
				x.pending.grow(i + 1)
				x.pending.set(i)
			}
			if x.fireAt != nil {
				x.fireAt = append(x.fireAt, fireAt(stalls, rules, it))
			}
			return nil
		}, func(id []byte, err error) error {
			if x.broken == nil {
				x.broken = map[string]string{}
			}
			x.broken[string(id)] = "stored record cannot be decoded: every poll skips the item: " + err.Error()
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load %s: %w", x.src.Name, err)
	}
	x.pending.grow(len(x.ends))
	x.seen = newBitset(len(x.ends))
	return nil
}

// fireAt is when the first stalled rule that has not fired during the
// item's stay in its state fires, or never.
func fireAt(stalls map[int]*Rule, rules []int, it *store.Item) int64 {
	at := int64(math.MaxInt64)
	for _, i := range rules {
		r := stalls[i]
		if slices.Contains(it.Stalled, i) || !r.state.Match(it.State) {
			continue
		}
		at = min(at, it.Since.Add(r.After).UnixNano())
	}
	return at
}

// Wait waits until the index is read. A poll that does not use it waits
// too, so no read is left running when the store closes.
func (x *Index) Wait() error {
	<-x.done
	return x.err
}

// Len is how many items are stored.
func (x *Index) Len() int { return len(x.ends) }

func (x *Index) id(i int) []byte {
	start := uint32(0)
	if i > 0 {
		start = x.ends[i-1]
	}
	return x.ids[start:x.ends[i]]
}

// find returns the position of id, or -1.
func (x *Index) find(id string) int {
	if x.next < len(x.ends) && string(x.id(x.next)) == id {
		x.next++
		return x.next - 1
	}
	lo, hi := 0, len(x.ends)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if strings.Compare(string(x.id(m)), id) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(x.ends) && string(x.id(lo)) == id {
		x.next = lo + 1
		return lo
	}
	return -1
}

// Filter marks the observations of one page seen and returns those that
// may change something: items new or in another state, settling, or due
// for a stalled rule. What it returns owns its memory, so the page's body
// can go; repeats of an id already seen this poll are dropped (the first
// occurrence wins). It waits for the index to be read.
func (x *Index) Filter(obs []Observation, now time.Time) ([]Observation, error) {
	if err := x.Wait(); err != nil {
		return nil, err
	}
	x.filtered, x.at = true, now
	nowNano := now.UnixNano()
	var out []Observation
	for _, ob := range obs {
		if tooLong(ob.ID) {
			// An earlier version may have stored it: seen, so not deleted.
			if i := x.find(ob.ID); i >= 0 {
				x.seen.set(i)
			}
			x.over.note(strings.Clone(ob.ID), tooLongReason(ob.ID))
			continue
		}
		if why, ok := x.broken[ob.ID]; ok {
			x.over.note(strings.Clone(ob.ID), why)
			continue
		}
		i := x.find(ob.ID)
		if i < 0 {
			if _, dup := x.added[ob.ID]; dup {
				x.dups.note(ob.ID)
				continue
			}
			if x.added == nil {
				x.added = map[string]struct{}{}
			}
			ob = own(ob)
			x.added[ob.ID] = struct{}{}
			out = append(out, ob)
			continue
		}
		if x.seen.get(i) {
			x.dups.note(ob.ID)
			continue
		}
		x.seen.set(i)
		if bytes.Equal(ob.State, x.states[x.state[i]]) && !x.pending.get(i) &&
			(x.fireAt == nil || nowNano < x.fireAt[i]) {
			continue
		}
		out = append(out, own(ob))
	}
	return out, nil
}

// own copies what an observation shares with its page.
func own(ob Observation) Observation {
	if ob.ObjectFunc != nil && ob.Object == nil {
		ob.object()
	}
	return Observation{
		ID:        strings.Clone(ob.ID),
		State:     bytes.Clone(ob.State),
		Object:    ob.Object,
		ObjectRaw: strings.Clone(ob.ObjectRaw),
	}
}

// due returns the ids of stored items that are settling or due for a
// stalled rule at now: all that re-observing the stored states can change.
func (x *Index) due(now time.Time) []string {
	var out []string
	for i := range x.ends {
		if x.pending.get(i) || x.fireAt != nil && now.UnixNano() >= x.fireAt[i] {
			out = append(out, string(x.id(i)))
		}
	}
	return out
}

// dueSince returns the ids of items the last Filter dropped that a
// stalled rule falls due for after it ran and by now, leaving out those in
// cands. Filter judged them at its own time; a poll judged at now must see
// them stalled.
func (x *Index) dueSince(cands []Observation, now time.Time) []string {
	if !x.filtered || x.fireAt == nil || !now.After(x.at) {
		return nil
	}
	from, to := x.at.UnixNano(), now.UnixNano()
	var out []string
	for i := range x.ends {
		if x.seen.get(i) && !x.pending.get(i) && x.fireAt[i] > from && x.fireAt[i] <= to {
			out = append(out, string(x.id(i)))
		}
	}
	if len(out) == 0 {
		return nil
	}
	kept := make(map[string]bool, len(cands))
	for _, ob := range cands {
		kept[ob.ID] = true
	}
	return slices.DeleteFunc(out, func(id string) bool { return kept[id] })
}

// dueUnseen returns the ids of stored items the listing did not name that
// are settling or due for a stalled rule at now: what a listing of changes
// only must still look at, as it leaves out items that did not change.
func (x *Index) dueUnseen(now time.Time) []string {
	var out []string
	for i := range x.ends {
		if !x.seen.get(i) && (x.pending.get(i) || x.fireAt != nil && now.UnixNano() >= x.fireAt[i]) {
			out = append(out, string(x.id(i)))
		}
	}
	return out
}

// unseen returns the ids of stored items the listing did not name.
func (x *Index) unseen() []string {
	var out []string
	for i := range x.ends {
		if !x.seen.get(i) {
			out = append(out, string(x.id(i)))
		}
	}
	return out
}

// pendingUnseen reports whether a stored item not named by the listing is
// settling.
func (x *Index) pendingUnseen() bool {
	for w := range x.pending {
		if x.pending[w]&^x.seen[w] != 0 {
			return true
		}
	}
	return false
}

func (d *duplicates) note(id string) {
	if d.n == 0 {
		d.first = strings.Clone(id)
	}
	d.n++
}
