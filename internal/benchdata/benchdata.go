// Package benchdata generates realistic upstream listings for benchmarks and
// the bench harness: many items of ~300 bytes each, shaped like a typical
// list endpoint (`{"data":[{"id":…,"status":…,"title":…,"metadata":{…}},…]}`).
package benchdata

import (
	"fmt"
	"strconv"
)

// Statuses are the states a generated item cycles through.
var Statuses = []string{"queued", "processing", "ready", "errored"}

// ID returns the id of the i-th generated item.
func ID(i int) string { return fmt.Sprintf("vid_%08d", i) }

// Status returns item i's status in generation gen. Only items whose index
// is a multiple of every (every ≥ 1) change between generations, so two
// consecutive generations differ in 1/every of the items.
func Status(i, gen, every int) string {
	g := 0
	if every > 0 && i%every == 0 {
		g = gen
	}
	return Statuses[(i+g)%len(Statuses)]
}

// Listing returns a listing of n items in generation gen, in which every
// every-th item's status moves on per generation (every = 100: 1% changed).
// Everything else about an item is stable across generations, so an
// unchanged item is byte-for-byte the same.
func Listing(n, gen, every int) []byte {
	b := make([]byte, 0, n*320+16)
	b = append(b, `{"data":[`...)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = Item(b, i, Status(i, gen, every))
	}
	b = append(b, "]}"...)
	return b
}

// Item appends item i with the given status to b.
func Item(b []byte, i int, status string) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, ID(i)...)
	b = append(b, `","status":"`...)
	b = append(b, status...)
	b = append(b, `","title":"Quarterly review recording part `...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","duration_ms":`...)
	b = strconv.AppendInt(b, int64(60000+i%3600000), 10)
	b = append(b, `,"kind":"recording","visibility":"private","created_at":"2026-11-0`...)
	b = strconv.AppendInt(b, int64(1+i%9), 10)
	b = append(b, `T10:00:00Z","metadata":{"owner":"user_`...)
	b = strconv.AppendInt(b, int64(i%977), 10)
	b = append(b, `","size_bytes":`...)
	b = strconv.AppendInt(b, int64(1<<20+i*37), 10)
	b = append(b, `,"tags":["team-`...)
	b = strconv.AppendInt(b, int64(i%13), 10)
	b = append(b, `","internal"],"ratio":0.`...)
	b = strconv.AppendInt(b, int64(100+i%900), 10)
	b = append(b, `,"public":`...)
	b = strconv.AppendBool(b, i%2 == 0)
	b = append(b, `,"region":"eu-west-1"}}`...)
	return b
}
