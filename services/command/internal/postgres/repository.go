// Package postgres is the command side's adapter to PostgreSQL: it loads a
// cart's state (snapshot + the events after it), runs a decision on it and
// appends the resulting events, the cart's head version and the outbox rows in
// one transaction, retrying when another writer got there first. A command
// sent with an idempotency key stores its response in that same transaction,
// so that a retry is answered from it. It never talks to NATS: the outbox
// relay publishes what this package commits.
package postgres

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
)

// Defaults for the options.
const (
	DefaultSnapshotEvery   = 20
	DefaultConflictRetries = 5
)

// Repository stores carts as event streams. It is safe for concurrent use;
// Close it after its last use.
type Repository struct {
	pool          *pgxpool.Pool
	committer     *committer
	commitMetrics *commitMetrics
	commitWorkers int
	maxGroup      int
	snapshotEvery int
	maxRetries    int
	keyTTL        time.Duration
	clock         func() time.Time
	states        *states
	catalog       *catalog
	relay         Relay
}

// Relay is the outbox relay running in this process, if any. The
// repository tells it of every commit that appended events, so that, while
// it leads, it publishes them without reading them back (Committed); while
// it does not, a commit notifies the leader through PostgreSQL instead.
type Relay interface {
	// Leading reports whether the relay leads and takes committed events.
	Leading() bool
	// Committed hands over the events a commit appended, with their
	// positions; it must not block.
	Committed(evs []envelope.Envelope)
}

// WithRelay makes the repository hand its commits to relay (see Relay).
// Without it, every commit notifies the leading relay through PostgreSQL.
func WithRelay(relay Relay) Option {
	return func(r *Repository) { r.relay = relay }
}

// Option configures a Repository.
type Option func(*Repository)

// WithSnapshotEvery makes the repository store a snapshot of a cart each time
// its version crosses a multiple of n (n < 1 keeps the default).
func WithSnapshotEvery(n int) Option {
	return func(r *Repository) {
		if n >= 1 {
			r.snapshotEvery = n
		}
	}
}

// WithConflictRetries sets how many times a command that lost a race with
// another writer is reloaded and decided again before the caller gets a
// conflict (n < 0 keeps the default; 0 means no retry).
func WithConflictRetries(n int) Option {
	return func(r *Repository) {
		if n >= 0 {
			r.maxRetries = n
		}
	}
}

// WithIdempotencyTTL sets how long an idempotency key and its response are
// kept (d <= 0 keeps idempotency.DefaultTTL). An expired key is no key.
func WithIdempotencyTTL(d time.Duration) Option {
	return func(r *Repository) {
		if d > 0 {
			r.keyTTL = d
		}
	}
}

// WithGroupCommit sets how many group transactions may be in flight at once
// (workers) and how many commands one may hold (maxGroup); values < 1 keep
// the defaults. maxGroup 1 commits every command on its own.
func WithGroupCommit(workers, maxGroup int) Option {
	return func(r *Repository) {
		if workers >= 1 {
			r.commitWorkers = workers
		}
		if maxGroup >= 1 {
			r.maxGroup = maxGroup
		}
	}
}

// WithStateCache sets how many carts' states the repository keeps to decide
// commands without reading the cart back (n < 0 keeps the default; 0 turns
// the cache off).
func WithStateCache(n int) Option {
	return func(r *Repository) {
		if n >= 0 {
			r.states = newStates(n)
		}
	}
}

// WithClock sets the clock that stamps events (occurred_at) and rows, and
// that idempotency keys expire by.
func WithClock(now func() time.Time) Option {
	return func(r *Repository) {
		if now != nil {
			r.clock = now
		}
	}
}

// New returns a Repository over pool.
func New(pool *pgxpool.Pool, opts ...Option) *Repository {
	r := &Repository{
		pool:          pool,
		snapshotEvery: DefaultSnapshotEvery,
		maxRetries:    DefaultConflictRetries,
		keyTTL:        idempotency.DefaultTTL,
		clock:         time.Now,
		commitWorkers: DefaultCommitWorkers,
		maxGroup:      DefaultMaxGroup,
		states:        newStates(DefaultStateCacheSize),
		catalog:       newCatalog(),
	}
	for _, o := range opts {
		o(r)
	}
	r.commitMetrics = newCommitMetrics()
	r.committer = newCommitter(pool, r.relay, r.commitMetrics, r.commitWorkers, r.maxGroup)
	return r
}

// Close commits the commands already queued and stops the group commit's
// workers; a command after Close fails without writing. Close it before the
// pool.
func (r *Repository) Close() {
	r.committer.close()
}

// now is the clock at PostgreSQL's precision, so that a state folded in
// memory equals the same state loaded back from the rows.
func (r *Repository) now() time.Time {
	return r.clock().UTC().Truncate(time.Microsecond)
}
