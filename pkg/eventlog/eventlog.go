// Package eventlog reads the append-only event log in PostgreSQL, the source of
// truth. The command service loads a cart's stream with it; the projector uses
// it to repair a gap and to rebuild read models.
package eventlog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// OutboxChannel is the channel a commit that queued outbox rows notifies
// (NOTIFY) when no relay in its own process leads, so that the leading relay
// — another command instance's — wakes. The leader listens on it.
const OutboxChannel = "cart_outbox"

// Querier is what reading needs: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Columns are the event columns every read selects, in the order Collect
// scans them.
const Columns = `position, event_id::text, stream_id::text, stream_type, version, type, schema_version, data, metadata, occurred_at`

// ReadStream returns a cart's events with afterVersion < version <= upToVersion
// in version order; upToVersion <= 0 means to the end of the stream.
func ReadStream(ctx context.Context, q Querier, cartID string, afterVersion, upToVersion int) ([]envelope.Envelope, error) {
	if upToVersion <= 0 {
		upToVersion = int(^uint32(0) >> 1)
	}
	rows, err := q.Query(ctx,
		`SELECT `+Columns+` FROM events WHERE stream_id = $1 AND version > $2 AND version <= $3 ORDER BY version`,
		cartID, afterVersion, upToVersion)
	if err != nil {
		return nil, fmt.Errorf("eventlog: read cart %s: %w", cartID, err)
	}
	evs, err := Collect(rows)
	if err != nil {
		return nil, fmt.Errorf("eventlog: read cart %s: %w", cartID, err)
	}
	return evs, nil
}

// ReadAll returns up to limit events with a position after afterPosition, in
// position order: a page of the whole log.
func ReadAll(ctx context.Context, q Querier, afterPosition int64, limit int) ([]envelope.Envelope, error) {
	rows, err := q.Query(ctx, `SELECT `+Columns+` FROM events WHERE position > $1 ORDER BY position LIMIT $2`, afterPosition, limit)
	if err != nil {
		return nil, fmt.Errorf("eventlog: read after %d: %w", afterPosition, err)
	}
	evs, err := collectInto(make([]envelope.Envelope, 0, min(max(limit, 0), 1<<16)), rows)
	if err != nil {
		return nil, fmt.Errorf("eventlog: read after %d: %w", afterPosition, err)
	}
	return evs, nil
}

// ReadPositions returns the events at the given positions, in position order.
func ReadPositions(ctx context.Context, q Querier, positions []int64) ([]envelope.Envelope, error) {
	rows, err := q.Query(ctx, `SELECT `+Columns+` FROM events WHERE position = ANY($1) ORDER BY position`, positions)
	if err != nil {
		return nil, fmt.Errorf("eventlog: read %d positions: %w", len(positions), err)
	}
	evs, err := Collect(rows)
	if err != nil {
		return nil, fmt.Errorf("eventlog: read %d positions: %w", len(positions), err)
	}
	return evs, nil
}

// Collect reads rows of Columns into envelopes, for a query of the caller's
// own (e.g. one queued in a batch).
func Collect(rows pgx.Rows) ([]envelope.Envelope, error) {
	return collectInto(nil, rows)
}

// collectInto appends rows of Columns to evs: a page read with a known limit
// fills a slice made with that capacity instead of growing one.
func collectInto(evs []envelope.Envelope, rows pgx.Rows) ([]envelope.Envelope, error) {
	return pgx.AppendRows(evs, rows, func(row pgx.CollectableRow) (envelope.Envelope, error) {
		var e envelope.Envelope
		err := row.Scan(&e.Position, &e.EventID, &e.StreamID, &e.StreamType, &e.Version, &e.Type,
			&e.SchemaVersion, &e.Data, &e.Metadata, &e.OccurredAt)
		e.OccurredAt = e.OccurredAt.UTC()
		return e, err
	})
}
