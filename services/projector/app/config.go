package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/pkg/httpserver"
)

// Config is everything the projector needs to start.
type Config struct {
	// HTTPAddr serves /healthz, /readyz and /admin
	// (PROJECTOR_ADDR, ":8082").
	HTTPAddr string
	// DebugAddr, when set, serves the Go profiler (/debug/pprof/) on a port
	// of its own, never the admin API's (DEBUG_ADDR, default off).
	DebugAddr string
	// MetricsAddr is the management address serving /metrics, never the
	// API's port (METRICS_ADDR, default "127.0.0.1:9082", or "127.0.0.1:0"
	// when the API's port is 0; "off" turns it off, as does "" here).
	MetricsAddr string
	// Timeouts bound each stage of a request; HTTP_READ_TIMEOUT bounds
	// reading a whole request, body included (default 15s).
	Timeouts httpserver.Timeouts
	// DatabaseURL is the event store, read to repair gaps and to rebuild;
	// the projector needs SELECT on events and applies no migrations
	// (DATABASE_URL).
	DatabaseURL string
	// NATSURL is the NATS server (NATS_URL).
	NATSURL string
	// Stream is the JetStream stream of cart events (NATS_STREAM, "CART_EVENTS").
	Stream string
	// SubjectPrefix is the events' subject prefix (NATS_SUBJECT_PREFIX, "cart.events").
	SubjectPrefix string
	// Durable names the consumer all projector instances share
	// (NATS_DURABLE, "cart-projector").
	Durable string
	// RedisURL is the read-model store (REDIS_URL).
	RedisURL string
	// RedisPrefix starts every read-model key (REDIS_PREFIX, "cart:").
	RedisPrefix string
	// BatchSize is the most messages projected at once (PROJECTOR_BATCH, 256).
	BatchSize int
	// AckWait is how long NATS waits for an ack before redelivering
	// (PROJECTOR_ACK_WAIT, 30s).
	AckWait time.Duration
	// MaxAckPending is the most unacknowledged messages over all instances
	// (PROJECTOR_MAX_ACK_PENDING, 1024).
	MaxAckPending int
	// TrailingWindow is the longest the product analytics, which nobody
	// waits for, hold events to apply them together after the cart
	// documents; held events are not acknowledged yet
	// (PROJECTOR_TRAILING_WINDOW, 25ms; 0 means the default; at most half
	// of AckWait).
	TrailingWindow time.Duration
	// MaxDeliver is how many deliveries an event that cannot be applied gets
	// before it is parked (PROJECTOR_MAX_DELIVER, 5).
	MaxDeliver int
	// CartCacheSize is how many open carts' documents an instance keeps to
	// fold their next events without reading them back
	// (PROJECTOR_CART_CACHE_SIZE, 4096; 0 turns it off).
	CartCacheSize int
	// RebuildPageSize is how many events a rebuild reads at once
	// (PROJECTOR_REBUILD_PAGE, 20000).
	RebuildPageSize int
	// RebuildDrainWait is how long a rebuild keeps the old generation up
	// to date after switching readers, before dropping it; longer than the
	// query service caches the generation (PROJECTOR_REBUILD_DRAIN, 2s).
	RebuildDrainWait time.Duration
	// AnalyticsBuildPage is how many events a build of the product
	// analytics reads at once (ANALYTICS_BUILD_PAGE, 10000; 0 means the
	// default). The builds drain the previous generation for
	// RebuildDrainWait.
	AnalyticsBuildPage int
	// AnalyticsCheckEvery is how often each projector looks for product
	// analytics to build: none yet (a first deployment, a Redis that lost
	// its data) or a build that died halfway (ANALYTICS_CHECK_INTERVAL,
	// 30s; 0 means the default).
	AnalyticsCheckEvery time.Duration
	// Auth checks the bearer tokens of the admin endpoints, which need the
	// admin role: AUTH_HS256_SECRET (development) or AUTH_JWKS_URL, and
	// AUTH_ISSUER, AUTH_AUDIENCE (see pkg/auth).
	Auth auth.Config
}

// ConfigFromEnv reads the configuration from the environment; lookup is
// os.LookupEnv in production and a map in tests.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	cfg, err := readConfig(lookup)
	if err != nil {
		return Config{}, err
	}
	return cfg, cfg.validate()
}

// DefaultMetricsAddr is the projector's management address: the admin
// API's port plus 1000, on loopback.
const DefaultMetricsAddr = "127.0.0.1:9082"

func readConfig(lookup func(string) (string, bool)) (Config, error) {
	r := envconf.New(lookup)
	httpAddr := r.String("PROJECTOR_ADDR", ":8082")
	cfg := Config{
		HTTPAddr:      httpAddr,
		MetricsAddr:   httpserver.MetricsAddrFromEnv(r, httpAddr, DefaultMetricsAddr),
		DebugAddr:     r.String("DEBUG_ADDR", ""),
		Timeouts:      httpserver.TimeoutsFromEnv(r),
		DatabaseURL:   r.String("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cart?sslmode=disable"),
		NATSURL:       r.String("NATS_URL", "nats://127.0.0.1:4222"),
		Stream:        r.String("NATS_STREAM", "CART_EVENTS"),
		SubjectPrefix: r.String("NATS_SUBJECT_PREFIX", "cart.events"),
		Durable:       r.String("NATS_DURABLE", "cart-projector"),
		RedisURL:      r.String("REDIS_URL", "redis://127.0.0.1:6379/0"),
		RedisPrefix:   r.String("REDIS_PREFIX", "cart:"),
		BatchSize:     r.Int("PROJECTOR_BATCH", 256),
		AckWait:       r.Duration("PROJECTOR_ACK_WAIT", 30*time.Second),
		MaxAckPending: r.Int("PROJECTOR_MAX_ACK_PENDING", 1024),
		MaxDeliver:    r.Int("PROJECTOR_MAX_DELIVER", 5),
		CartCacheSize: r.Int("PROJECTOR_CART_CACHE_SIZE", 4096),

		TrailingWindow: r.Duration("PROJECTOR_TRAILING_WINDOW", defaultTrailingWindow),

		RebuildPageSize:  r.Int("PROJECTOR_REBUILD_PAGE", 20000),
		RebuildDrainWait: r.Duration("PROJECTOR_REBUILD_DRAIN", 2*time.Second),

		AnalyticsBuildPage:  r.Int("ANALYTICS_BUILD_PAGE", defaultAnalyticsBuildPage),
		AnalyticsCheckEvery: r.Duration("ANALYTICS_CHECK_INTERVAL", defaultAnalyticsCheckEvery),

		Auth: auth.ConfigFromEnv(r),
	}
	if err := r.Err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (c Config) validate() error {
	errs := []error{c.validateProjection(), c.Timeouts.Validate()}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("app: auth: %w", err))
	}
	return errors.Join(errs...)
}

// validateProjection checks what projecting and rebuilding need; the
// rebuild command needs no auth.
func (c Config) validateProjection() error {
	var errs []error
	if c.CartCacheSize < 0 {
		errs = append(errs, fmt.Errorf("app: cart cache size %d must be 0 (off) or more", c.CartCacheSize))
	}
	if c.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("app: max deliver %d must be at least 1", c.MaxDeliver))
	}
	if c.RebuildPageSize < 1 {
		errs = append(errs, fmt.Errorf("app: rebuild page size %d must be at least 1", c.RebuildPageSize))
	}
	if c.RebuildDrainWait < 0 {
		errs = append(errs, fmt.Errorf("app: rebuild drain wait %s must not be negative", c.RebuildDrainWait))
	}
	if c.BatchSize < 1 || c.BatchSize > c.MaxAckPending {
		errs = append(errs, fmt.Errorf("app: batch size %d must be between 1 and max ack pending %d", c.BatchSize, c.MaxAckPending))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("app: ack wait %s must be at least 1s", c.AckWait))
	}
	// Held messages must be settled long before NATS redelivers them.
	if w := c.withDefaults().TrailingWindow; w <= 0 || w > c.AckWait/2 {
		errs = append(errs, fmt.Errorf("app: trailing window %s must be positive and at most half the ack wait %s", w, c.AckWait))
	}
	if c.Stream == "" || c.SubjectPrefix == "" || c.Durable == "" {
		errs = append(errs, errors.New("app: stream, subject prefix and durable must be set"))
	}
	return errors.Join(append(errs, c.validateAnalytics())...)
}

// Defaults of the product analytics' settings, which a Config's zero
// values stand for.
const (
	defaultAnalyticsBuildPage  = 10000
	defaultAnalyticsCheckEvery = 30 * time.Second
	defaultTrailingWindow      = 25 * time.Millisecond
)

// withDefaults fills in the settings left zero.
func (c Config) withDefaults() Config {
	if c.AnalyticsBuildPage == 0 {
		c.AnalyticsBuildPage = defaultAnalyticsBuildPage
	}
	if c.AnalyticsCheckEvery == 0 {
		c.AnalyticsCheckEvery = defaultAnalyticsCheckEvery
	}
	if c.TrailingWindow == 0 {
		c.TrailingWindow = defaultTrailingWindow
	}
	return c
}

// validateAnalytics checks the product analytics' settings.
func (c Config) validateAnalytics() error {
	c = c.withDefaults()
	var errs []error
	if c.AnalyticsBuildPage < 1 {
		errs = append(errs, fmt.Errorf("app: analytics build page %d must be at least 1", c.AnalyticsBuildPage))
	}
	if c.AnalyticsCheckEvery < time.Second {
		errs = append(errs, fmt.Errorf("app: analytics check interval %s must be at least 1s", c.AnalyticsCheckEvery))
	}
	return errors.Join(errs...)
}
