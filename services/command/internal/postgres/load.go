package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// SnapshotSchemaVersion is the shape of the cart.State JSON stored in
// snapshots. Bump it when cart.State changes incompatibly: snapshots of
// another version are ignored (the stream is replayed instead) and replaced
// by the next one taken.
const SnapshotSchemaVersion = 1

// Load returns a cart's current state: its latest usable snapshot folded with
// the events recorded after it. A cart id that is not a UUID, or a cart with
// no events, is cart.ErrNotFound.
//
// The snapshot and the events after it are read in one round trip. The two
// statements see the database at two moments: should a newer snapshot be
// stored in between, the events start after it and no longer follow the
// snapshot read first — then, and when the snapshot is unusable, the events
// are read again after the snapshot in hand.
func (r *Repository) Load(ctx context.Context, cartID string) (_ cart.State, err error) {
	id, ok := cart.CanonicalID(cartID)
	if !ok {
		return cart.State{}, cart.ErrNotFound
	}
	ctx, span := telemetry.Tracer().Start(ctx, "cart.load", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(dbSystem, attribute.String("cart.id", id)))
	defer func() {
		if !errors.Is(err, cart.ErrNotFound) {
			telemetry.RecordError(span, err)
		}
		span.End()
	}()
	s, usable, evs, err := r.loadOnce(ctx, id)
	if err != nil {
		return cart.State{}, fmt.Errorf("postgres: load cart %s: %w", id, err)
	}
	if !usable || (len(evs) > 0 && evs[0].Version != s.Version+1) {
		if evs, err = eventlog.ReadStream(ctx, r.pool, id, s.Version, 0); err != nil {
			return cart.State{}, fmt.Errorf("postgres: load cart %s: %w", id, err)
		}
	}
	if s.Version == 0 && len(evs) == 0 {
		return cart.State{}, cart.ErrNotFound
	}
	for _, e := range evs {
		rec, err := e.Recorded()
		if err != nil {
			return cart.State{}, fmt.Errorf("postgres: load cart %s: %w", id, err)
		}
		s = cart.Evolve(s, rec)
	}
	return s, nil
}

const selectSnapshot = `SELECT version, state FROM snapshots WHERE stream_id = $1 AND schema_version = $2`

var selectAfterSnapshot = eventlog.StreamAfter(
	`COALESCE((SELECT version FROM snapshots WHERE stream_id = $1 AND schema_version = $2), 0)`)

// loadOnce reads the cart's snapshot (the zero State when there is none;
// usable false when the stored one cannot be used) and the events after the
// snapshot the second statement sees.
func (r *Repository) loadOnce(ctx context.Context, id string) (s cart.State, usable bool, evs []envelope.Envelope, err error) {
	b := &pgx.Batch{}
	b.Queue(selectSnapshot, id, SnapshotSchemaVersion)
	b.Queue(selectAfterSnapshot, id, SnapshotSchemaVersion)
	br := r.pool.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	s, usable, err = scanSnapshot(br.QueryRow(), id)
	if err != nil {
		return cart.State{}, false, nil, fmt.Errorf("snapshot: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return cart.State{}, false, nil, fmt.Errorf("events: %w", err)
	}
	if evs, err = eventlog.Collect(rows); err != nil {
		return cart.State{}, false, nil, fmt.Errorf("events: %w", err)
	}
	return s, usable, evs, nil
}

// scanSnapshot returns the stored snapshot, or the zero State when there is
// none. Snapshots are a cache: one that does not decode, or does not match
// its row, is not usable, and the stream is replayed from the start.
func scanSnapshot(row pgx.Row, id string) (cart.State, bool, error) {
	var (
		version int
		data    []byte
	)
	err := row.Scan(&version, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return cart.State{}, true, nil
	}
	if err != nil {
		return cart.State{}, false, err
	}
	var s cart.State
	if json.Unmarshal(data, &s) != nil || s.Version != version || s.CartID != id {
		return cart.State{}, false, nil
	}
	return s, true, nil
}
