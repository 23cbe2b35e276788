package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
)

// Constraint names the writes rely on (see migrations/sql).
const (
	sqlstateUniqueViolation      = "23505"
	constraintStreamVersion      = "events_stream_version_key"
	constraintOneOpenPerCustomer = "carts_one_open_per_customer"
	constraintIdempotencyKey     = "idempotency_keys_pkey"
)

var (
	// errConflict: another writer appended to the stream since it was loaded.
	errConflict = errors.New("postgres: stream version moved on")
	// errOpenExists: another request opened the customer's cart first.
	errOpenExists = errors.New("postgres: customer already has an open cart")
	// errKeyTaken: a concurrent request with the same idempotency key
	// stored it first (and committed: PostgreSQL reports the violation only
	// then).
	errKeyTaken = errors.New("postgres: idempotency key stored by a concurrent request")
)

// The head statements move the cart's registry row; each returns cart_id
// only when it succeeded, and appendTail inserts the events and their outbox
// rows FROM head, so a compare-and-set that matched no row writes nothing.
const (
	headInsert = `WITH head AS (
	INSERT INTO carts (cart_id, customer_id, status, version, created_at, updated_at)
	VALUES (@cart, @customer, @status, @version, @at, @at)
	RETURNING cart_id
)`
	headUpdate = `WITH head AS (
	UPDATE carts SET version = @version, status = @status, updated_at = @at
	WHERE cart_id = @cart AND version = @expected
	RETURNING cart_id
)`
	// ORDER BY makes positions (the relay's order) follow versions.
	appendTail = `, ins AS (
	INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at)
	SELECT e.event_id, head.cart_id, @streamType, e.version, e.type, e.schema_version, e.data::jsonb, @metadata::jsonb, @at
	FROM head CROSS JOIN unnest(@ids::uuid[], @versions::int[], @types::text[], @schemas::int[], @data::text[])
		AS e(event_id, version, type, schema_version, data)
	ORDER BY e.version
	RETURNING position
)
INSERT INTO outbox (position) SELECT position FROM ins`

	// A snapshot never replaces a newer one.
	upsertSnapshot = `INSERT INTO snapshots (stream_id, version, schema_version, state, taken_at)
VALUES ($1, $2, $3, $4::jsonb, $5)
ON CONFLICT (stream_id) DO UPDATE
SET version = EXCLUDED.version, schema_version = EXCLUDED.schema_version, state = EXCLUDED.state, taken_at = EXCLUDED.taken_at
WHERE snapshots.version < EXCLUDED.version OR snapshots.schema_version <> EXCLUDED.schema_version`
)

// write appends evs to the stream whose state is s, in one transaction: the
// idempotency key when there is one, the head statement (insert or
// compare-and-set of the carts row), the events, their outbox rows and, when
// the new version crosses a multiple of snapshotEvery, a snapshot. It returns
// the new state.
func (r *Repository) write(ctx context.Context, head string, s cart.State, customerID string, evs []cart.Event, md envelope.Metadata, key *keyRow) (cart.State, error) {
	now := r.now()
	mdJSON, err := json.Marshal(md)
	if err != nil {
		return cart.State{}, fmt.Errorf("postgres: append cart %s: metadata: %w", s.CartID, err)
	}
	var (
		n        = len(evs)
		ids      = make([]string, n)
		versions = make([]int32, n)
		types    = make([]string, n)
		schemas  = make([]int32, n)
		data     = make([]string, n)
		next     = s
	)
	for i, ev := range evs {
		version := s.Version + i + 1
		id, err := uuid.NewV7()
		if err != nil {
			return cart.State{}, fmt.Errorf("postgres: append cart %s: event id: %w", s.CartID, err)
		}
		env, err := envelope.New(id.String(), s.CartID, version, ev, md, now)
		if err != nil {
			return cart.State{}, fmt.Errorf("postgres: append cart %s: %w", s.CartID, err)
		}
		ids[i], versions[i], types[i], schemas[i], data[i] = env.EventID, int32(version), env.Type, int32(env.SchemaVersion), string(env.Data)
		next = cart.Evolve(next, cart.Recorded{CartID: s.CartID, Version: version, OccurredAt: now, Event: ev})
	}

	b := &pgx.Batch{}
	// The key goes first: a concurrent request with the same key waits on
	// it before touching the cart, and fails once this one commits.
	r.queueKey(b, key, now)
	appendAt := b.Len()
	b.Queue(head+appendTail, pgx.NamedArgs{
		"cart": s.CartID, "customer": customerID, "status": string(next.Status),
		"version": next.Version, "expected": s.Version, "at": now,
		"streamType": envelope.StreamTypeCart, "metadata": string(mdJSON),
		"ids": ids, "versions": versions, "types": types, "schemas": schemas, "data": data,
	})
	if s.Version/r.snapshotEvery != next.Version/r.snapshotEvery {
		state, err := json.Marshal(next)
		if err != nil {
			return cart.State{}, fmt.Errorf("postgres: append cart %s: snapshot: %w", s.CartID, err)
		}
		b.Queue(upsertSnapshot, s.CartID, next.Version, SnapshotSchemaVersion, string(state), now)
	}
	if err := r.commit(ctx, b, appendAt, n); err != nil {
		return cart.State{}, fmt.Errorf("postgres: append cart %s v%d: %w", s.CartID, next.Version, err)
	}
	return next, nil
}

// commit runs the batch in one transaction, in one round trip, and commits
// it. The statement at appendAt (if any, else -1) must insert n outbox rows,
// or another writer moved the stream on (errConflict).
func (r *Repository) commit(ctx context.Context, b *pgx.Batch, appendAt, n int) (err error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		// After a successful Commit, Rollback is a no-op returning ErrTxClosed.
		if rerr := tx.Rollback(ctx); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) && err != nil {
			err = errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
	}()
	br := tx.SendBatch(ctx, b)
	for i := 0; err == nil && i < b.Len(); i++ {
		var tag pgconn.CommandTag
		tag, err = br.Exec()
		if err == nil && i == appendAt && tag.RowsAffected() != int64(n) {
			err = errConflict
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return classify(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", classify(err))
	}
	return nil
}

// classify turns the unique violations that mean "someone else won" into the
// sentinel errors the retry loops understand, keeping the original as well.
func classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == sqlstateUniqueViolation {
		switch pe.ConstraintName {
		case constraintStreamVersion:
			return fmt.Errorf("%w: %w", errConflict, err)
		case constraintOneOpenPerCustomer:
			return fmt.Errorf("%w: %w", errOpenExists, err)
		case constraintIdempotencyKey:
			return fmt.Errorf("%w: %w", errKeyTaken, err)
		}
	}
	return err
}
