package postgres

import (
	"cmp"
	"slices"
	"time"
)

// A poll writes an item and its events per change, thousands of times in
// one batch. As statements of their own they cost PostgreSQL a parse,
// plan and execution each; gathered, each kind is one statement over
// arrays (unnest), whatever the count: 1,000 changes went from ~2,000
// statements to 3.
//
// Gathering is sound because nothing reads between: every read sends
// what is gathered first. Writes of one key are folded into the last
// (an upsert cannot touch one row twice), and items are written apart
// from the other statements because no other statement touches them.
// Events are written before any other statement that follows them, which
// may take their sequence (see write).

// Where a gathering is sent without waiting for a read or the commit.
const (
	maxGathered      = 5000
	maxGatheredBytes = 8 << 20
)

type itemWrites struct {
	at    map[string]int // source, NUL, id → index in ops
	ops   []itemOp
	bytes int
}

type itemOp struct {
	source, id          string
	del                 bool
	state, head, object []byte
}

func (w *itemWrites) add(t *Txn, op itemOp) error {
	k := op.source + "\x00" + op.id
	if i, ok := w.at[k]; ok {
		w.ops[i] = op
	} else {
		if w.at == nil {
			w.at = map[string]int{}
		}
		w.at[k] = len(w.ops)
		w.ops = append(w.ops, op)
	}
	n := len(op.state) + len(op.head) + len(op.object) + len(k)
	w.bytes += n
	t.size += int64(n)
	return t.sendIfFull(len(w.ops) >= maxGathered || w.bytes >= maxGatheredBytes)
}

const (
	putItemsSQL = `INSERT INTO items (source, id, state, head, object)
SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[])
ON CONFLICT (source, id) DO UPDATE SET state = excluded.state, head = excluded.head, object = excluded.object`
	deleteItemsSQL = `DELETE FROM items i USING unnest($1::bytea[], $2::bytea[]) AS d(source, id)
WHERE i.source = d.source AND i.id = d.id`
)

// emit queues what is gathered as at most two statements. Rows go in key
// order, so two transactions writing the same items lock them in the same
// order and never deadlock.
func (w *itemWrites) emit(t *Txn) {
	if len(w.ops) == 0 {
		return
	}
	slices.SortFunc(w.ops, func(a, b itemOp) int {
		return cmp.Or(cmp.Compare(a.source, b.source), cmp.Compare(a.id, b.id))
	})
	var put, del [5][][]byte
	for _, op := range w.ops {
		if op.del {
			del[0] = append(del[0], []byte(op.source))
			del[1] = append(del[1], []byte(op.id))
			continue
		}
		put[0] = append(put[0], []byte(op.source))
		put[1] = append(put[1], []byte(op.id))
		put[2] = append(put[2], op.state)
		put[3] = append(put[3], op.head)
		put[4] = append(put[4], op.object)
	}
	if len(del[0]) > 0 {
		t.push(queued{what: "delete items", sql: deleteItemsSQL, args: []any{del[0], del[1]}}, 0)
	}
	if len(put[0]) > 0 {
		t.push(queued{what: "write items", sql: putItemsSQL, args: []any{put[0], put[1], put[2], put[3], put[4]}}, 0)
	}
	clear(w.at)
	w.ops, w.bytes = w.ops[:0], 0
}

type eventWrites struct {
	at    map[string]int // id → index in ops
	ops   []eventOp
	bytes int
}

type eventOp struct {
	id, source, itemID, typ, kind string
	createdAt                     time.Time
	body                          []byte
	outbox                        bool
}

func (w *eventWrites) add(t *Txn, op eventOp) error {
	if i, ok := w.at[op.id]; ok {
		// Logged again: the record is the last one written, and it stays
		// in the outbox if either write put it there.
		op.outbox = op.outbox || w.ops[i].outbox
		w.ops[i] = op
	} else {
		if w.at == nil {
			w.at = map[string]int{}
		}
		w.at[op.id] = len(w.ops)
		w.ops = append(w.ops, op)
	}
	n := len(op.body) + len(op.id)
	w.bytes += n
	t.size += int64(n)
	return t.sendIfFull(len(w.ops) >= maxGathered || w.bytes >= maxGatheredBytes)
}

// addEventsSQL logs events (a new one takes the next sequence, a logged
// one keeps its own) and puts those in $9 in the outbox.
const addEventsSQL = `WITH e AS (
	INSERT INTO events (id, source, item_id, type, kind, created_at, created_ns, body)
	SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[], $5::text[], $6::timestamptz[], $7::integer[], $8::bytea[])
	ON CONFLICT (id) DO UPDATE SET source = excluded.source, item_id = excluded.item_id, type = excluded.type,
		kind = excluded.kind, created_at = excluded.created_at, created_ns = excluded.created_ns, body = excluded.body
)
INSERT INTO outbox (event_id) SELECT id FROM unnest($9::bytea[]) AS o(id)
ON CONFLICT (event_id) DO NOTHING`

// emit queues what is gathered as one statement. Events keep the order
// they were written in, which is the order of their sequence.
func (w *eventWrites) emit(t *Txn) {
	if len(w.ops) == 0 {
		return
	}
	n := len(w.ops)
	ids, sources, items, types, bodies := make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
	kinds, at, ns := make([]string, n), make([]time.Time, n), make([]int32, n)
	var outbox [][]byte
	for i, op := range w.ops {
		ids[i], sources[i], items[i], types[i] = []byte(op.id), []byte(op.source), []byte(op.itemID), []byte(op.typ)
		kinds[i], at[i], ns[i], bodies[i] = op.kind, op.createdAt, int32(op.createdAt.Nanosecond()%1000), op.body
		if op.outbox {
			outbox = append(outbox, ids[i])
		}
	}
	if outbox == nil {
		outbox = [][]byte{}
	}
	t.push(queued{what: "write events", sql: addEventsSQL, args: []any{ids, sources, items, types, kinds, at, ns, bodies, outbox}}, 0)
	clear(w.at)
	w.ops, w.bytes = w.ops[:0], 0
}
