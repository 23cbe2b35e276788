package eventlog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// RowQuerier also reads single rows.
type RowQuerier interface {
	Querier
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Span is the versions After+1..UpTo of one cart.
type Span struct {
	CartID      string
	After, UpTo int
}

// ReadSpans reads the events of many carts' spans in one query, by cart, in
// version order.
func ReadSpans(ctx context.Context, q Querier, spans []Span) (map[string][]envelope.Envelope, error) {
	if len(spans) == 0 {
		return nil, nil
	}
	ids := make([]string, len(spans))
	after := make([]int32, len(spans))
	upTo := make([]int32, len(spans))
	for i, s := range spans {
		ids[i], after[i], upTo[i] = s.CartID, int32(s.After), int32(s.UpTo)
	}
	rows, err := q.Query(ctx, `SELECT `+Columns+` FROM events
		JOIN unnest($1::uuid[], $2::int[], $3::int[]) AS s(cart, after, up_to)
		  ON stream_id = s.cart AND version > s.after AND version <= s.up_to
		ORDER BY events.stream_id, events.version`, ids, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("eventlog: read %d spans: %w", len(spans), err)
	}
	evs, err := Collect(rows)
	if err != nil {
		return nil, fmt.Errorf("eventlog: read %d spans: %w", len(spans), err)
	}
	out := make(map[string][]envelope.Envelope)
	for _, e := range evs {
		out[e.StreamID] = append(out[e.StreamID], e)
	}
	return out, nil
}

// Key is a place in the log ordered by cart, then version; the zero Key
// is before every event.
type Key struct {
	CartID  string
	Version int
}

// ReadCartPage reads up to limit events after key in (cart, version) order:
// keyset pagination over the events' unique (stream_id, version) index, so
// every page costs the same however far into the log it is. A cart's
// events come whole and in order, page after page; an event committed
// before the read began is in it if its key is after the key. (The
// columns are qualified: the select list has a text stream_id, which would
// sort by text without the index.)
func ReadCartPage(ctx context.Context, q Querier, after Key, limit int) ([]envelope.Envelope, error) {
	cartID := after.CartID
	if cartID == "" {
		cartID = "00000000-0000-0000-0000-000000000000" // no cart id is smaller
	}
	rows, err := q.Query(ctx, `SELECT `+Columns+` FROM events
		WHERE (events.stream_id, events.version) > ($1::uuid, $2)
		ORDER BY events.stream_id, events.version
		LIMIT $3`, cartID, after.Version, limit)
	if err != nil {
		return nil, fmt.Errorf("eventlog: read after cart %s v%d: %w", cartID, after.Version, err)
	}
	evs, err := collectInto(make([]envelope.Envelope, 0, min(max(limit, 0), 1<<16)), rows)
	if err != nil {
		return nil, fmt.Errorf("eventlog: read after cart %s v%d: %w", cartID, after.Version, err)
	}
	return evs, nil
}

// RangeSQL reads the events with $1 < position <= $2 in position order, at
// most $3 of them, by the primary key: an index range scan, no sort. Its
// columns are Columns but for the ids, which come as uuid (16 bytes each
// in the binary protocol) for readers that decode rows themselves.
const RangeSQL = `SELECT position, event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at
FROM events WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3`

// End returns how many events the log holds and the last position
// committed.
func End(ctx context.Context, q RowQuerier) (count, last int64, err error) {
	if err := q.QueryRow(ctx, `SELECT count(*), coalesce(max(position), 0) FROM events`).Scan(&count, &last); err != nil {
		return 0, 0, fmt.Errorf("eventlog: count events: %w", err)
	}
	return count, last, nil
}
