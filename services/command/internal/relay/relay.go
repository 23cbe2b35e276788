// Package relay is the outbox relay of the command service: it publishes the
// rows of the transactional outbox to NATS JetStream as CloudEvents and
// takes each row out of the outbox once JetStream has acknowledged it,
// keeping it for a retention window should the stream lose it (verify.go).
//
// Exactly one relay is active at a time across all command instances: the
// leader holds a PostgreSQL session-level advisory lock on a connection of its
// own; the others stand by and retry. The guarantees, and why they hold:
//
//   - At least once: a row is removed only after its PubAck arrived, so a crash
//     at any point leaves unpublished rows in the outbox for the next leader;
//     and a stream that forgets what it acknowledged is detected and given
//     the lost events again (verify.go).
//   - Effectively once: every message carries Nats-Msg-Id = event id, so the
//     stream drops the re-publication of a row whose PubAck arrived but whose
//     removal did not happen (within the stream's duplicate window).
//   - Per-cart order: events are published in waves (see publish.go); the
//     k+1-th event of a cart is sent only after the k-th is in the stream.
//
// The leader finds its work two ways: the events a commit in its own process
// hands over (handoff.go), published at once; and the outbox rows, read in
// rounds — when it takes the lead, when another instance's commit notifies
// it (NOTIFY), to remove what it published, and every PollInterval.
package relay

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cart-cqrs/cart/pkg/backoff"
	"github.com/cart-cqrs/cart/pkg/envelope"
)

// Defaults of Options.
const (
	DefaultStream          = "CART_EVENTS"
	DefaultSubjectPrefix   = "cart.events"
	DefaultSource          = "urn:cart-cqrs:command"
	DefaultReplicas        = 1
	DefaultDuplicateWindow = 5 * time.Minute
	DefaultBatchSize       = 1000
	DefaultMaxInFlight     = 1000
	DefaultPollInterval    = time.Second
	DefaultPublishTimeout  = 5 * time.Second
	DefaultStandbyInterval = time.Second
	// DefaultRetention outlasts NATS' default sync_interval (2 minutes), and
	// equals the default duplicate window, so that what the stream still
	// holds of a re-published window is dropped as a duplicate.
	DefaultRetention      = 5 * time.Minute
	DefaultVerifyInterval = 10 * time.Second
	// DefaultLockKey is the advisory lock key: "cart_out" in ASCII.
	DefaultLockKey int64 = 0x636172745f6f7574
)

// Options configure the relay and the stream. Zero values take the defaults.
type Options struct {
	Stream          string        // JetStream stream name, default "CART_EVENTS"
	SubjectPrefix   string        // default "cart.events"; stream subjects = SubjectPrefix+".>"
	Source          string        // CloudEvents source, default "urn:cart-cqrs:command"
	Replicas        int           // default 1
	DuplicateWindow time.Duration // default 5m
	BatchSize       int           // rows per round, default 1000
	MaxInFlight     int           // unacknowledged publishes at once, default 1000
	PollInterval    time.Duration // fallback poll when no NOTIFY arrives, default 1s
	PublishTimeout  time.Duration // per batch, default 5s
	LockKey         int64         // advisory lock key, default DefaultLockKey
	// StandbyInterval is how often a standby retries the lock, and the pause
	// before contending again after leadership was lost; default 1s.
	StandbyInterval time.Duration
	// Retention is how long published rows are kept to publish them again
	// should the stream lose them (see verify.go); default 5m, negative:
	// none are kept, for a stream whose servers fsync every message or
	// replicate it. It should not exceed DuplicateWindow.
	Retention time.Duration
	// RepublishHorizon is how far back the events go that are published
	// again when the stream is gone, or lost more than the retained rows
	// cover; 0 (the default): all of history.
	RepublishHorizon time.Duration
	// VerifyInterval is how often the leader compares the stream with what
	// it acknowledged, besides at the start and after a reconnect; default
	// 10s.
	VerifyInterval time.Duration
	// AfterPublish is a fault-injection hook for tests and chaos runs: called after the PubAcks of a batch and before its rows are
	// removed. An error makes the relay drop leadership as if it had crashed at that point.
	AfterPublish func(ctx context.Context, published []envelope.Envelope) error
}

func (o Options) withDefaults() Options {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = DefaultSubjectPrefix
	}
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.Replicas <= 0 {
		o.Replicas = DefaultReplicas
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.LockKey == 0 {
		o.LockKey = DefaultLockKey
	}
	if o.StandbyInterval <= 0 {
		o.StandbyInterval = DefaultStandbyInterval
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.VerifyInterval <= 0 {
		o.VerifyInterval = DefaultVerifyInterval
	}
	return o
}

// Relay publishes the outbox while it is the leader. Create it with New and
// run it with Run.
type Relay struct {
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	opts   Options
	logger *slog.Logger

	handoff   *handoff
	leader    atomic.Bool
	published atomic.Uint64
	lastRound atomic.Int64 // nanoseconds
	floor     atomic.Int64

	// watch is what the leader knows of the stream (verify.go); only the
	// leader's goroutine uses it.
	watch       *watch
	losses      lossCounters
	republished atomic.Uint64
	retained    atomic.Int64
}

// New returns a relay. js should be created with
// jetstream.WithPublishAsyncTimeout so that a PubAck that never arrives does
// not stay pending in the client forever; the relay itself gives up waiting
// after PublishTimeout either way.
func New(pool *pgxpool.Pool, js jetstream.JetStream, opts Options, logger *slog.Logger) *Relay {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Relay{pool: pool, js: js, opts: opts.withDefaults(), logger: logger.With("component", "relay"), handoff: newHandoff(), watch: &watch{}}
}

// Leading reports whether this relay leads and takes committed events
// in-process (Committed). While it does, a commit in this process need not
// notify through PostgreSQL; while it does not, a commit must, so that the
// leader — another instance's relay — wakes.
func (r *Relay) Leading() bool { return r.handoff.accepting() }

// Committed hands the relay the events a commit in this process just
// appended, with their positions, and wakes it: the leader publishes them
// without reading them back (see handoff.go). A relay that does not lead
// ignores them. Call it after the commit and before its commands are
// answered, so that a cart's events are handed over in the order they were
// appended.
func (r *Relay) Committed(evs []envelope.Envelope) { r.handoff.add(evs) }

// IsLeader reports whether this relay holds the lock and publishes.
func (r *Relay) IsLeader() bool { return r.leader.Load() }

// Published is the number of events this relay has seen acknowledged by
// JetStream (duplicates included) and removed from the outbox, since it was
// created.
func (r *Relay) Published() uint64 { return r.published.Load() }

// Floor is the position at or below which the leader knows every outbox
// row published (see cursor); 0 while it stands by or has just taken over.
func (r *Relay) Floor() int64 { return r.floor.Load() }

// LastRoundDuration is how long the last non-empty round took (read,
// publish, remove).
func (r *Relay) LastRoundDuration() time.Duration { return time.Duration(r.lastRound.Load()) }

// Run contends for leadership, and publishes while it leads, until ctx ends.
// Every failure (PostgreSQL, NATS, the AfterPublish hook) ends the current
// leadership at most; Run then contends again. It returns nil on a clean stop.
func (r *Relay) Run(ctx context.Context) error {
	for {
		err := r.contend(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.logger.Warn("relay: failed; contending again", "after", r.opts.StandbyInterval, "error", err)
		}
		if !backoff.Sleep(ctx, r.opts.StandbyInterval) {
			return nil
		}
	}
}
