package pgtest

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// CopyFromer is a pool, a connection or a transaction.
type CopyFromer interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

// InsertEvents appends envs to the event log as the command service stores
// them (without outbox rows: for tests of the log's readers), in one COPY.
func InsertEvents(ctx context.Context, db CopyFromer, envs []envelope.Envelope) error {
	rows := make([][]any, len(envs))
	for i, e := range envs {
		rows[i] = []any{e.EventID, e.StreamID, e.StreamType, e.Version, e.Type, e.SchemaVersion, []byte(e.Data), e.Metadata, e.OccurredAt}
	}
	_, err := db.CopyFrom(ctx, pgx.Identifier{"events"},
		[]string{"event_id", "stream_id", "stream_type", "version", "type", "schema_version", "data", "metadata", "occurred_at"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("pgtest: insert %d events: %w", len(envs), err)
	}
	return nil
}
