package postgres

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// page holds the rows of one read copied out of the connection's buffer,
// in one allocation, so the consumer's callbacks run with the connection
// free (they may read and write in the same transaction) and a scan of
// 100,000 rows allocates per page, not per value. Every column read so
// must be bytea, whose binary format is its bytes.
type page struct {
	buf   []byte
	cells []cell
	ncols int
}

// cell is one value: n bytes at off in buf; n < 0 is NULL.
type cell struct{ off, n int }

// fill reads rows into p, replacing what it held. keep leaves the old
// buffer to values decoded from it and starts a new one.
func (p *page) fill(rows pgx.Rows, keep bool) error {
	if keep {
		p.buf = nil
	}
	p.buf, p.cells = p.buf[:0], p.cells[:0]
	p.ncols = len(rows.FieldDescriptions())
	for rows.Next() {
		for _, v := range rows.RawValues() {
			if v == nil {
				p.cells = append(p.cells, cell{n: -1})
				continue
			}
			p.cells = append(p.cells, cell{off: len(p.buf), n: len(v)})
			p.buf = append(p.buf, v...)
		}
	}
	return rows.Err()
}

// len is the number of rows.
func (p *page) len() int {
	if p.ncols == 0 {
		return 0
	}
	return len(p.cells) / p.ncols
}

// at returns a value: nil when NULL or empty.
func (p *page) at(row, col int) []byte {
	c := p.cells[row*p.ncols+col]
	if c.n <= 0 {
		return nil
	}
	return p.buf[c.off : c.off+c.n : c.off+c.n]
}

// pageRows is how many rows a paged read asks for at a time.
const (
	headPage = 8192 // ids, states and heads: ~100 bytes a row
	itemPage = 512  // with objects
	rowPage  = 256  // records read until the consumer has enough
)

// pgEpoch is where PostgreSQL's binary timestamps count from, in Unix
// seconds.
const pgEpoch = 946684800

// decodeTimestamptz reads a timestamptz in binary format: microseconds
// since 2000-01-01 UTC.
func decodeTimestamptz(b []byte) (time.Time, error) {
	if len(b) != 8 {
		return time.Time{}, fmt.Errorf("timestamptz of %d bytes", len(b))
	}
	us := int64(binary.BigEndian.Uint64(b))
	sec, rem := us/1e6, us%1e6
	if rem < 0 {
		sec, rem = sec-1, rem+1e6
	}
	return time.Unix(sec+pgEpoch, rem*1000).UTC(), nil
}

// own copies a value out of a page; an empty one stays non-nil, so as a
// parameter it is an empty bytea and not NULL.
func own(b []byte) []byte { return append([]byte{}, b...) }
