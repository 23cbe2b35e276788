package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/pkg/httpserver"
)

// Config is everything the query service needs to start.
type Config struct {
	// HTTPAddr is the listen address of the API and health
	// (QUERY_ADDR, default ":8081"; ":0" picks a free port).
	HTTPAddr string
	// DebugAddr, when set, serves the Go profiler (/debug/pprof/) on a port
	// of its own, never the API's (DEBUG_ADDR, default off; e.g.
	// "127.0.0.1:6061").
	DebugAddr string
	// MetricsAddr is the management address serving /metrics, never the
	// API's port (METRICS_ADDR, default "127.0.0.1:9081", or "127.0.0.1:0"
	// when the API's port is 0; "off" turns it off, as does "" here).
	MetricsAddr string
	// RedisURL locates the read model (REDIS_URL, default
	// "redis://127.0.0.1:6379/0").
	RedisURL string
	// RedisPrefix starts every read-model key (REDIS_PREFIX, default "cart:");
	// it must match the projector's.
	RedisPrefix string
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
	// MinVersionWait bounds how long a ?minVersion read waits for the read
	// model to reach the version (QUERY_MIN_VERSION_WAIT, default 2s, at
	// most MaxMinVersionWait; zero means the default).
	MinVersionWait time.Duration
}

// MaxMinVersionWait caps MinVersionWait: a read held longer than this ties
// up a connection for a projector that is not merely late but stuck, and
// the client is better told (503, retry) than kept waiting.
const MaxMinVersionWait = 10 * time.Second

func (c Config) validate() error {
	if c.MinVersionWait < 0 || c.MinVersionWait > MaxMinVersionWait {
		return fmt.Errorf("QUERY_MIN_VERSION_WAIT: %s is not between 0 and %s", c.MinVersionWait, MaxMinVersionWait)
	}
	return c.Timeouts.Validate()
}

// DefaultMetricsAddr is the query service's management address: the API's
// port plus 1000, on loopback.
const DefaultMetricsAddr = "127.0.0.1:9081"

// ConfigFromEnv reads the Config from the environment; lookup is usually
// os.LookupEnv. Every malformed value is reported at once.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	r := envconf.New(lookup)
	httpAddr := r.String("QUERY_ADDR", ":8081")
	cfg := Config{
		HTTPAddr:       httpAddr,
		MetricsAddr:    httpserver.MetricsAddrFromEnv(r, httpAddr, DefaultMetricsAddr),
		DebugAddr:      r.String("DEBUG_ADDR", ""),
		RedisURL:       r.String("REDIS_URL", "redis://127.0.0.1:6379/0"),
		RedisPrefix:    r.String("REDIS_PREFIX", "cart:"),
		Auth:           auth.ConfigFromEnv(r),
		Limits:         httpserver.LimitsFromEnv(r),
		Timeouts:       httpserver.TimeoutsFromEnv(r),
		MinVersionWait: r.Duration("QUERY_MIN_VERSION_WAIT", 2*time.Second),
	}
	errs := []error{r.Err(), cfg.validate(), cfg.Limits.Validate()}
	if cfg.MinVersionWait == 0 {
		errs = append(errs, errors.New("QUERY_MIN_VERSION_WAIT: must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("query: config: %w", err)
	}
	return cfg, nil
}
