package analytics

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
)

// Events is the event log in PostgreSQL, read to repair gaps and to build a
// generation from the whole history. The projector's role may only SELECT
// from events, which is all this needs.
type Events interface {
	eventlog.Querier
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// span is the versions after..upTo of one cart.
type span struct {
	cartID      string
	after, upTo int
}

// readSpans reads the events of the spans, by cart, in version order, in
// one query.
func readSpans(ctx context.Context, q eventlog.Querier, spans []span) (map[string][]envelope.Envelope, error) {
	if len(spans) == 0 {
		return nil, nil
	}
	ids := make([]string, len(spans))
	after := make([]int32, len(spans))
	upTo := make([]int32, len(spans))
	for i, s := range spans {
		ids[i], after[i], upTo[i] = s.cartID, int32(s.after), int32(s.upTo)
	}
	rows, err := q.Query(ctx, `SELECT `+eventlog.Columns+` FROM events
		JOIN unnest($1::uuid[], $2::int[], $3::int[]) AS s(cart, after, up_to)
		  ON stream_id = s.cart AND version > s.after AND version <= s.up_to
		ORDER BY events.stream_id, events.version`, ids, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("analytics: read %d gaps from the event log: %w", len(spans), err)
	}
	evs, err := eventlog.Collect(rows)
	if err != nil {
		return nil, fmt.Errorf("analytics: read %d gaps from the event log: %w", len(spans), err)
	}
	out := make(map[string][]envelope.Envelope)
	for _, e := range evs {
		out[e.StreamID] = append(out[e.StreamID], e)
	}
	return out, nil
}

// logKey is a place in the event log ordered by cart, then version.
type logKey struct {
	cartID  string
	version int
}

// firstKey is before every event: no cart id is smaller.
var firstKey = logKey{cartID: "00000000-0000-0000-0000-000000000000"}

// readPage reads up to limit events after key in (cart, version) order
// (the columns are qualified: the select list has a text stream_id, which
// would sort by text without the index):
// keyset pagination over the events' unique (stream_id, version) index, so
// every page costs the same however far into the log it is. A cart's
// events come whole and in order, page after page; an event committed
// before the read began is in it if its key is after the key.
func readPage(ctx context.Context, q eventlog.Querier, after logKey, limit int) ([]envelope.Envelope, error) {
	rows, err := q.Query(ctx, `SELECT `+eventlog.Columns+` FROM events
		WHERE (events.stream_id, events.version) > ($1::uuid, $2)
		ORDER BY events.stream_id, events.version
		LIMIT $3`, after.cartID, after.version, limit)
	if err != nil {
		return nil, fmt.Errorf("analytics: read the event log after cart %s v%d: %w", after.cartID, after.version, err)
	}
	evs, err := eventlog.Collect(rows)
	if err != nil {
		return nil, fmt.Errorf("analytics: read the event log after cart %s v%d: %w", after.cartID, after.version, err)
	}
	return evs, nil
}

// countEvents is the event log's size, for the build's progress.
func countEvents(ctx context.Context, q Events) (int64, error) {
	var n int64
	if err := q.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("analytics: count events: %w", err)
	}
	return n, nil
}
