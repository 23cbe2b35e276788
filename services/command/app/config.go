package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
	"github.com/cart-cqrs/cart/services/command/internal/postgres"
	"github.com/cart-cqrs/cart/services/command/internal/relay"
)

// Config is everything the command service needs to start.
type Config struct {
	// HTTPAddr is the listen address of the API and health
	// (COMMAND_ADDR, default ":8080"; ":0" picks a free port).
	HTTPAddr string
	// DebugAddr, when set, serves the Go profiler (/debug/pprof/) on a port
	// of its own, never the API's (DEBUG_ADDR, default off; e.g.
	// "127.0.0.1:6060").
	DebugAddr string
	// MetricsAddr is the management address serving /metrics, never the
	// API's port (METRICS_ADDR, default "127.0.0.1:9080", or "127.0.0.1:0"
	// when the API's port is 0; "off" turns it off, as does "" here).
	MetricsAddr string
	// DatabaseURL locates PostgreSQL, the source of truth (DATABASE_URL).
	DatabaseURL string
	// DatabaseMaxConns caps the connection pool (DATABASE_MAX_CONNS, default
	// 16). The relay's leadership connection is taken out of the pool.
	DatabaseMaxConns int
	// NATSURL locates NATS JetStream, where the relay publishes (NATS_URL).
	NATSURL string
	// Auth checks bearer tokens: AUTH_HS256_SECRET (development) or
	// AUTH_JWKS_URL (production: RS256/ES256 keys, AUTH_ALGORITHMS,
	// AUTH_JWKS_REFRESH), AUTH_ISSUER, AUTH_AUDIENCE, AUTH_LEEWAY, and
	// AUTH_DISABLED (development only).
	Auth auth.Config
	// Limits are the per-customer rate limit (RATE_LIMIT_RPS, RATE_LIMIT_BURST;
	// 0 turns it off) and the browser origins allowed by CORS
	// (CORS_ALLOWED_ORIGINS, comma-separated exact origins).
	Limits httpserver.Limits
	// Timeouts bound each stage of a request; HTTP_READ_TIMEOUT bounds
	// reading a whole request, body included (default 15s).
	Timeouts httpserver.Timeouts
	// Relay configures the stream this service creates or updates and the
	// outbox relay: NATS_STREAM (CART_EVENTS), NATS_SUBJECT_PREFIX
	// (cart.events), NATS_STREAM_REPLICAS (1), NATS_DUPLICATE_WINDOW (5m),
	// RELAY_BATCH_SIZE (1000), RELAY_MAX_IN_FLIGHT (1000), RELAY_POLL_INTERVAL (1s),
	// RELAY_PUBLISH_TIMEOUT (5s), CLOUDEVENTS_SOURCE (urn:cart-cqrs:command),
	// and the repair of a stream that lost acknowledged messages:
	// RELAY_RETENTION (how long published rows are kept to publish them
	// again; default the duplicate window, 0 keeps none), RELAY_REPUBLISH_HORIZON
	// (how far back a stream that is gone is published again; 0, the default:
	// all of history), RELAY_VERIFY_INTERVAL (10s).
	Relay relay.Options
	// RelayEnabled runs the outbox relay in this instance (RELAY_ENABLED,
	// default true). Several instances may enable it: one leads at a time.
	RelayEnabled bool
	// RelayAfterPublish, when set, is copied into Relay.AfterPublish: a
	// fault-injection hook for tests and chaos runs. Not read from the
	// environment.
	RelayAfterPublish func(ctx context.Context, published []envelope.Envelope) error
	// SnapshotEvery stores a cart snapshot each time its version crosses a
	// multiple of it (SNAPSHOT_EVERY, default 20).
	SnapshotEvery int
	// StateCacheSize is how many carts' states this instance keeps to decide
	// commands without reading the cart back (STATE_CACHE_SIZE, default
	// 4096; 0 turns the cache off). The compare-and-set at commit makes a
	// stale entry cost a reload, never a wrong write.
	StateCacheSize int
	// ConflictRetries is how often a command that lost a race with another
	// writer is retried before the client gets 409 (CONFLICT_RETRIES,
	// default 5).
	ConflictRetries int
	// CommitWorkers is how many group transactions may be in flight at once
	// and CommitGroupMax how many commands one may hold (COMMIT_WORKERS,
	// default 2; COMMIT_GROUP_MAX, default 64; 1 commits each command on its
	// own; 0 means the default). Concurrent commands are committed together,
	// each answered only after the commit that holds it.
	CommitWorkers  int
	CommitGroupMax int
	// IdempotencyTTL is how long an Idempotency-Key and the response stored
	// for it are kept (IDEMPOTENCY_TTL, default 24h; 0 means the default).
	// Expired keys are treated as absent and deleted every minute.
	IdempotencyTTL time.Duration
	// Migrate applies the database migrations on start (MIGRATE, default
	// true); safe with several instances starting at once.
	Migrate bool
}

// DefaultMetricsAddr is the command service's management address: the
// API's port plus 1000, on loopback.
const DefaultMetricsAddr = "127.0.0.1:9080"

// ConfigFromEnv reads the Config from the environment; lookup is usually
// os.LookupEnv. Every malformed value is reported at once.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	r := envconf.New(lookup)
	httpAddr := r.String("COMMAND_ADDR", ":8080")
	cfg := Config{
		HTTPAddr:         httpAddr,
		MetricsAddr:      httpserver.MetricsAddrFromEnv(r, httpAddr, DefaultMetricsAddr),
		DebugAddr:        r.String("DEBUG_ADDR", ""),
		DatabaseURL:      r.String("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cart?sslmode=disable"),
		DatabaseMaxConns: r.Int("DATABASE_MAX_CONNS", 16),
		NATSURL:          r.String("NATS_URL", "nats://127.0.0.1:4222"),
		Auth:             auth.ConfigFromEnv(r),
		Limits:           httpserver.LimitsFromEnv(r),
		Timeouts:         httpserver.TimeoutsFromEnv(r),
		Relay: relay.Options{
			Stream:           r.String("NATS_STREAM", relay.DefaultStream),
			SubjectPrefix:    r.String("NATS_SUBJECT_PREFIX", relay.DefaultSubjectPrefix),
			Source:           r.String("CLOUDEVENTS_SOURCE", relay.DefaultSource),
			Replicas:         r.Int("NATS_STREAM_REPLICAS", relay.DefaultReplicas),
			DuplicateWindow:  r.Duration("NATS_DUPLICATE_WINDOW", relay.DefaultDuplicateWindow),
			BatchSize:        r.Int("RELAY_BATCH_SIZE", relay.DefaultBatchSize),
			MaxInFlight:      r.Int("RELAY_MAX_IN_FLIGHT", relay.DefaultMaxInFlight),
			PollInterval:     r.Duration("RELAY_POLL_INTERVAL", relay.DefaultPollInterval),
			PublishTimeout:   r.Duration("RELAY_PUBLISH_TIMEOUT", relay.DefaultPublishTimeout),
			RepublishHorizon: r.Duration("RELAY_REPUBLISH_HORIZON", 0),
			VerifyInterval:   r.Duration("RELAY_VERIFY_INTERVAL", relay.DefaultVerifyInterval),
		},
		RelayEnabled:    r.Bool("RELAY_ENABLED", true),
		SnapshotEvery:   r.Int("SNAPSHOT_EVERY", postgres.DefaultSnapshotEvery),
		StateCacheSize:  r.Int("STATE_CACHE_SIZE", postgres.DefaultStateCacheSize),
		ConflictRetries: r.Int("CONFLICT_RETRIES", postgres.DefaultConflictRetries),
		IdempotencyTTL:  r.Duration("IDEMPOTENCY_TTL", idempotency.DefaultTTL),
		CommitWorkers:   r.Int("COMMIT_WORKERS", postgres.DefaultCommitWorkers),
		CommitGroupMax:  r.Int("COMMIT_GROUP_MAX", postgres.DefaultMaxGroup),
		Migrate:         r.Bool("MIGRATE", true),
	}
	// Published rows are kept as long as the stream drops re-publications as
	// duplicates, unless said otherwise; 0 keeps none.
	window := cfg.Relay.DuplicateWindow
	if window == 0 {
		window = relay.DefaultDuplicateWindow
	}
	if cfg.Relay.Retention = r.Duration("RELAY_RETENTION", window); cfg.Relay.Retention == 0 {
		cfg.Relay.Retention = -1
	}
	errs := []error{r.Err(), cfg.validate()}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("command: config: %w", err)
	}
	return cfg, nil
}

// validate reports values no service should start with. Zero values of the
// relay options mean "the default" and are accepted.
func (cfg Config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(cfg.HTTPAddr != "", "HTTP address is required")
	check(cfg.DatabaseURL != "", "database URL is required")
	check(cfg.NATSURL != "", "NATS URL is required")
	check(cfg.DatabaseMaxConns >= 2, "DATABASE_MAX_CONNS=%d: want at least 2", cfg.DatabaseMaxConns)
	check(cfg.SnapshotEvery >= 1, "SNAPSHOT_EVERY=%d: want at least 1", cfg.SnapshotEvery)
	check(cfg.StateCacheSize >= 0, "STATE_CACHE_SIZE=%d: want 0 or more", cfg.StateCacheSize)
	check(cfg.ConflictRetries >= 0, "CONFLICT_RETRIES=%d: want 0 or more", cfg.ConflictRetries)
	check(cfg.CommitWorkers >= 0 && cfg.CommitWorkers < cfg.DatabaseMaxConns,
		"COMMIT_WORKERS=%d: want 1 to DATABASE_MAX_CONNS-1 (%d): loads need connections too", cfg.CommitWorkers, cfg.DatabaseMaxConns-1)
	check(cfg.CommitGroupMax >= 0 && cfg.CommitGroupMax <= 1000, "COMMIT_GROUP_MAX=%d: want 1 to 1000", cfg.CommitGroupMax)
	check(cfg.IdempotencyTTL >= 0, "IDEMPOTENCY_TTL=%v: want a positive duration", cfg.IdempotencyTTL)
	check(cfg.Relay.Replicas >= 0 && cfg.Relay.Replicas <= 5, "NATS_STREAM_REPLICAS=%d: want 1 to 5", cfg.Relay.Replicas)
	check(cfg.Relay.BatchSize >= 0, "RELAY_BATCH_SIZE=%d: want a positive number", cfg.Relay.BatchSize)
	check(cfg.Relay.MaxInFlight >= 0, "RELAY_MAX_IN_FLIGHT=%d: want a positive number", cfg.Relay.MaxInFlight)
	check(cfg.Relay.DuplicateWindow >= 0, "NATS_DUPLICATE_WINDOW=%v: want a positive duration", cfg.Relay.DuplicateWindow)
	check(cfg.Relay.PollInterval >= 0, "RELAY_POLL_INTERVAL=%v: want a positive duration", cfg.Relay.PollInterval)
	check(cfg.Relay.PublishTimeout >= 0, "RELAY_PUBLISH_TIMEOUT=%v: want a positive duration", cfg.Relay.PublishTimeout)
	check(cfg.Relay.RepublishHorizon >= 0, "RELAY_REPUBLISH_HORIZON=%v: want a positive duration, or 0 for all of history", cfg.Relay.RepublishHorizon)
	check(cfg.Relay.VerifyInterval >= 0, "RELAY_VERIFY_INTERVAL=%v: want a positive duration", cfg.Relay.VerifyInterval)
	// What the stream still holds of a window published again must fall in
	// its duplicate window, or it would appear twice.
	window := cfg.Relay.DuplicateWindow
	if window == 0 {
		window = relay.DefaultDuplicateWindow
	}
	check(cfg.Relay.Retention <= window,
		"RELAY_RETENTION=%v: want at most the stream's duplicate window (NATS_DUPLICATE_WINDOW, %v)", cfg.Relay.Retention, window)
	errs = append(errs, cfg.Limits.Validate(), cfg.Timeouts.Validate())
	return errors.Join(errs...)
}
