package postgres

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// Log is the event log as the projections read it (engine.Log).
type Log struct{ q eventlog.RowQuerier }

// NewLog reads the log through q, a pool.
func NewLog(q eventlog.RowQuerier) Log { return Log{q: q} }

var _ engine.Log = Log{}

// ReadStream implements engine.Log.
func (l Log) ReadStream(ctx context.Context, cartID string, after, upTo int) ([]envelope.Envelope, error) {
	return eventlog.ReadStream(ctx, l.q, cartID, after, upTo)
}

// ReadSpans implements engine.Log.
func (l Log) ReadSpans(ctx context.Context, spans []engine.Span) (map[string][]envelope.Envelope, error) {
	in := make([]eventlog.Span, len(spans))
	for i, s := range spans {
		in[i] = eventlog.Span(s)
	}
	return eventlog.ReadSpans(ctx, l.q, in)
}

// ReadPage implements engine.Log.
func (l Log) ReadPage(ctx context.Context, after engine.Key, limit int) ([]envelope.Envelope, error) {
	return eventlog.ReadCartPage(ctx, l.q, eventlog.Key(after), limit)
}

// End implements engine.Log.
func (l Log) End(ctx context.Context) (count, last int64, err error) { return eventlog.End(ctx, l.q) }

// Scan calls fn for each event with after < position <= upTo, in
// position order, at most limit of them, and returns how many it read and
// the position of the last.
//
// A build reads the whole log through it, so it reads the rows as they
// arrive instead of scanning them into values: the envelope's strings and
// Data share the connection's read buffer, and are valid only until fn
// returns. What fn keeps must be copied (Envelope.Clone).
func (l Log) Scan(ctx context.Context, after, upTo int64, limit int, fn func(*envelope.Envelope) error) (n int, last int64, err error) {
	rows, err := l.q.Query(ctx, eventlog.RangeSQL, after, upTo, limit)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: read the log after %d: %w", after, err)
	}
	defer rows.Close()
	var (
		e    envelope.Envelope
		ids  [72]byte
		read func() error
	)
	for rows.Next() {
		if read == nil {
			read = func() error {
				return rows.Scan(&e.Position, &e.EventID, &e.StreamID, &e.StreamType, &e.Version, &e.Type,
					&e.SchemaVersion, &e.Data, &e.Metadata, &e.OccurredAt)
			}
			if rawLayout(rows.FieldDescriptions()) {
				read = func() error { return decodeRow(rows.RawValues(), &e, &ids) }
			}
		}
		if err := read(); err != nil {
			return n, last, fmt.Errorf("postgres: read the log after %d: %w", last, err)
		}
		e.OccurredAt = e.OccurredAt.UTC()
		if err := fn(&e); err != nil {
			return n, last, err
		}
		n, last = n+1, e.Position
	}
	if err := rows.Err(); err != nil {
		return n, last, fmt.Errorf("postgres: read the log after %d: %w", last, err)
	}
	return n, last, nil
}

// rawLayout reports whether the columns arrive in the formats decodeRow
// reads: what pgx asks for by default (the simple protocol, for one, sends
// everything as text, and then rows.Scan reads them).
func rawLayout(fds []pgconn.FieldDescription) bool {
	if len(fds) != 10 {
		return false
	}
	binaryCols := []int{0, 1, 2, 4, 6, 9} // position, ids, versions, occurred_at
	for _, i := range binaryCols {
		if fds[i].Format != pgtype.BinaryFormatCode {
			return false
		}
	}
	return fds[7].DataTypeOID == pgtype.JSONBOID && fds[8].DataTypeOID == pgtype.JSONBOID
}

var errRow = errors.New("unexpected column value")

// decodeRow reads one row of logQuery in rawLayout into e; ids holds the
// two ids' text.
func decodeRow(vals [][]byte, e *envelope.Envelope, ids *[72]byte) error {
	if len(vals) != 10 || len(vals[0]) != 8 || len(vals[1]) != 16 || len(vals[2]) != 16 || len(vals[4]) != 4 ||
		len(vals[6]) != 4 || len(vals[9]) != 8 || vals[3] == nil || vals[5] == nil {
		return errRow
	}
	e.Position = int64(binary.BigEndian.Uint64(vals[0]))
	e.EventID = formatUUID(ids[:36], vals[1])
	e.StreamID = formatUUID(ids[36:], vals[2])
	e.StreamType = name(vals[3])
	e.Version = int(int32(binary.BigEndian.Uint32(vals[4])))
	e.Type = name(vals[5])
	e.SchemaVersion = int(int32(binary.BigEndian.Uint32(vals[6])))
	data, err := jsonb(vals[7])
	if err != nil {
		return err
	}
	e.Data = data
	md, err := jsonb(vals[8])
	if err != nil {
		return err
	}
	e.Metadata = envelope.Metadata{}
	if !decodeMetadata(md, &e.Metadata, true) {
		if err := json.Unmarshal(md, &e.Metadata); err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
	}
	us := int64(binary.BigEndian.Uint64(vals[9]))
	if us == math.MaxInt64 || us == math.MinInt64 {
		return fmt.Errorf("occurred_at: %w", errRow)
	}
	e.OccurredAt = time.UnixMicro(us + postgresEpoch).UTC()
	return nil
}

// postgresEpoch is 2000-01-01, where timestamps count from, in Unix
// microseconds.
const postgresEpoch = 946684800 * 1000000

// jsonb is a jsonb value's text, in either format: the binary one is the
// text behind a version byte.
func jsonb(v []byte) ([]byte, error) {
	switch {
	case v == nil:
		return nil, errRow
	case len(v) > 0 && v[0] == 1: // JSON text never starts with it
		return v[1:], nil
	}
	return v, nil
}

// formatUUID writes a binary uuid's text into dst (36 bytes) and returns it
// as a string sharing dst's memory.
func formatUUID(dst, u []byte) string {
	hex.Encode(dst[0:8], u[0:4])
	dst[8] = '-'
	hex.Encode(dst[9:13], u[4:6])
	dst[13] = '-'
	hex.Encode(dst[14:18], u[6:8])
	dst[18] = '-'
	hex.Encode(dst[19:23], u[8:10])
	dst[23] = '-'
	hex.Encode(dst[24:36], u[10:16])
	return unsafe.String(&dst[0], 36)
}

// name is a stream or event type: one of the constants, or the bytes as a
// string sharing their memory.
func name(b []byte) string {
	if s := known(unsafe.String(unsafe.SliceData(b), len(b))); s != "" {
		return s
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func known(s string) string {
	switch s {
	case envelope.StreamTypeCart:
		return envelope.StreamTypeCart
	case cart.TypeOpened:
		return cart.TypeOpened
	case cart.TypeItemAdded:
		return cart.TypeItemAdded
	case cart.TypeItemRemoved:
		return cart.TypeItemRemoved
	case cart.TypeQuantityChanged:
		return cart.TypeQuantityChanged
	case cart.TypeCheckedOut:
		return cart.TypeCheckedOut
	}
	return ""
}
