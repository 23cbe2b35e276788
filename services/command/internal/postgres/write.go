package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// Constraint names the writes rely on (see migrations/sql).
const (
	sqlstateUniqueViolation      = "23505"
	sqlstateDeadlockDetected     = "40P01"
	sqlstateNotAppended          = "CQ409" // cart_require_appended
	sqlstateProductChanged       = "CQ412" // cart_require_product
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
	// errCatalogChanged: a product the command added is no longer in the
	// catalog as the command saw it (always with errConflict: the command
	// is decided again).
	errCatalogChanged = errors.New("postgres: product changed in the catalog")
)

// The head statements move the cart's registry row; each returns cart_id
// only when it succeeded, and appendTail inserts the events and their outbox
// rows FROM head, so a compare-and-set that matched no row appends nothing —
// and then fails the statement (SQLSTATE CQ409, see migration 00008), so that
// the transaction it is part of rolls back. It returns the events'
// positions, for the relay (see Relay): in no particular order, since an
// ordered aggregate costs the server a sort on every append, but ascending
// with the versions, as ins numbers them.
//
// The parameters are positional (named arguments would have the statement
// rewritten on every call): $1 the cart, $2 the customer (insert) or the
// expected version (update), $3 the status, $4 the new version, $5 the time,
// and appendTail's from $6 on (see prepare).
const (
	headInsert = `WITH head AS (
	INSERT INTO carts (cart_id, customer_id, status, version, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $5)
	RETURNING cart_id
)`
	headUpdate = `WITH head AS (
	UPDATE carts SET version = $4, status = $3, updated_at = $5
	WHERE cart_id = $1 AND version = $2
	RETURNING cart_id
)`
	// ORDER BY makes positions (the relay's order) follow versions.
	appendTail = `, ins AS (
	INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at)
	SELECT e.event_id, head.cart_id, $6, e.version, e.type, e.schema_version, e.data::jsonb, $7::jsonb, $5
	FROM head CROSS JOIN unnest($8::uuid[], $9::int[], $10::text[], $11::int[], $12::text[])
		AS e(event_id, version, type, schema_version, data)
	ORDER BY e.version
	RETURNING position
), queued AS (
	INSERT INTO outbox (position) SELECT position FROM ins RETURNING position
)
SELECT cart_require_appended($13, (SELECT count(*) FROM queued)), (SELECT array_agg(position) FROM queued)`

	// The product an item-added event keeps must still be in the catalog,
	// available, as the event has it (see migration 00009).
	requireProduct = `SELECT cart_require_product($1, $2, $3, $4)`

	// A snapshot never replaces a newer one.
	upsertSnapshot = `INSERT INTO snapshots (stream_id, version, schema_version, state, taken_at)
VALUES ($1, $2, $3, $4::jsonb, $5)
ON CONFLICT (stream_id) DO UPDATE
SET version = EXCLUDED.version, schema_version = EXCLUDED.schema_version, state = EXCLUDED.state, taken_at = EXCLUDED.taken_at
WHERE snapshots.version < EXCLUDED.version OR snapshots.schema_version <> EXCLUDED.schema_version`
)

// write appends evs to the stream whose state is s, all or nothing: the
// idempotency key when there is one, the head statement (insert or
// compare-and-set of the carts row), the events, their outbox rows and, when
// the new version crosses a multiple of snapshotEvery, a snapshot. It returns
// the new state.
func (r *Repository) write(ctx context.Context, head string, s cart.State, customerID string, evs []cart.Event, md envelope.Metadata, key *keyRow) (_ cart.State, err error) {
	ctx, span := telemetry.Tracer().Start(ctx, "cart.append", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(dbSystem, attribute.String("cart.id", s.CartID),
			attribute.Int("cart.version", s.Version+len(evs)), attribute.Int("cart.events", len(evs))))
	defer func() { telemetry.RecordError(span, err); span.End() }()
	u, next, err := r.prepare(head, s, customerID, evs, md, key)
	if err != nil {
		return cart.State{}, err
	}
	// The span covers the wait for the group commit too: what the request
	// waited for.
	if err := r.committer.commit(ctx, u); err != nil {
		return cart.State{}, fmt.Errorf("postgres: append cart %s v%d: %w", s.CartID, next.Version, err)
	}
	return next, nil
}

// dbSystem is the database attribute of the repository's spans.
var dbSystem = attribute.String("db.system.name", "postgresql")

// prepare renders write's statements as a unit of the group commit, and
// the state they leave the cart in.
func (r *Repository) prepare(head string, s cart.State, customerID string, evs []cart.Event, md envelope.Metadata, key *keyRow) (*unit, cart.State, error) {
	now := r.now()
	mdJSON, err := json.Marshal(md)
	if err != nil {
		return nil, cart.State{}, fmt.Errorf("postgres: append cart %s: metadata: %w", s.CartID, err)
	}
	var (
		n        = len(evs)
		envs     = make([]envelope.Envelope, n)
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
			return nil, cart.State{}, fmt.Errorf("postgres: append cart %s: event id: %w", s.CartID, err)
		}
		env, err := envelope.New(id.String(), s.CartID, version, ev, md, now)
		if err != nil {
			return nil, cart.State{}, fmt.Errorf("postgres: append cart %s: %w", s.CartID, err)
		}
		envs[i] = env
		ids[i], versions[i], types[i], schemas[i], data[i] = env.EventID, int32(version), env.Type, int32(env.SchemaVersion), string(env.Data)
		next = cart.Evolve(next, cart.Recorded{CartID: s.CartID, Version: version, OccurredAt: now, Event: ev})
	}

	b := &pgx.Batch{}
	// The key goes first: a concurrent request with the same key waits on
	// it before touching the cart, and fails once this one commits.
	r.queueKey(b, key, now)
	for _, ev := range evs {
		if a, ok := ev.(cart.ItemAdded); ok {
			b.Queue(requireProduct, a.ProductID, a.Name, a.UnitPrice, a.Currency)
		}
	}
	var second any = s.Version // the compare-and-set's expected version
	if head == headInsert {
		second = customerID
	}
	b.Queue(head+appendTail, s.CartID, second, string(next.Status), next.Version, now,
		envelope.StreamTypeCart, string(mdJSON), ids, versions, types, schemas, data, n)
	appendAt := b.Len() - 1
	if s.Version/r.snapshotEvery != next.Version/r.snapshotEvery {
		state, err := json.Marshal(next)
		if err != nil {
			return nil, cart.State{}, fmt.Errorf("postgres: append cart %s: snapshot: %w", s.CartID, err)
		}
		b.Queue(upsertSnapshot, s.CartID, next.Version, SnapshotSchemaVersion, string(state), now)
	}
	u := newUnit(b, headLock(head, s.CartID, customerID), key.lock())
	u.events, u.appendAt = envs, appendAt
	return u, next, nil
}

// newUnit makes the batch a unit of the group commit (see committer): all
// its statements take effect, or none. locks name the rows it contends on
// ("" for none).
func newUnit(b *pgx.Batch, locks ...string) *unit {
	return &unit{batch: b, locks: slices.DeleteFunc(locks, func(l string) bool { return l == "" }), appendAt: -1}
}

// headLock names the row a head statement contends on: the cart's, or for
// a new cart the customer's one open cart.
func headLock(head, cartID, customerID string) string {
	if head == headInsert {
		return "customer:" + customerID
	}
	return "cart:" + cartID
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
	if errors.As(err, &pe) && pe.Code == sqlstateProductChanged {
		return fmt.Errorf("%w: %w: %w", errConflict, errCatalogChanged, err)
	}
	if errors.As(err, &pe) && (pe.Code == sqlstateNotAppended || pe.Code == sqlstateDeadlockDetected) {
		// Another writer moved the cart on, or the transaction was chosen
		// as a deadlock's victim: the command is decided again.
		return fmt.Errorf("%w: %w", errConflict, err)
	}
	return err
}

// addedProducts are the products of evs' item-added events.
func addedProducts(evs []cart.Event) []string {
	var ids []string
	for _, ev := range evs {
		if a, ok := ev.(cart.ItemAdded); ok {
			ids = append(ids, a.ProductID)
		}
	}
	return ids
}
