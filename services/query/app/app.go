// Package app is the query service's composition root: it builds the Redis
// client, the read-model store and the HTTP API from a Config, runs them,
// and releases them. main and the end-to-end tests start the service
// through it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/openapi"
	"github.com/cart-cqrs/cart/pkg/service"
	"github.com/cart-cqrs/cart/pkg/telemetry"
	"github.com/cart-cqrs/cart/pkg/telemetry/redistrace"
	"github.com/cart-cqrs/cart/services/query/api"
	"github.com/cart-cqrs/cart/services/query/internal/httpapi"
	"github.com/cart-cqrs/cart/services/query/internal/redisstore"
)

// generationRefresh is how often the service re-reads which read-model
// generation is current; a rebuild's switch is seen within this lag (the
// projector allows readers a second). Requests never read it: they use the
// generation last read.
const generationRefresh = 250 * time.Millisecond

var (
	_ httpapi.Carts     = (*redisstore.Store)(nil)
	_ httpapi.Updates   = (*redisstore.Updates)(nil)
	_ httpapi.Analytics = (*redisstore.Analytics)(nil)
)

// App is a running query service.
type App struct {
	logger   *slog.Logger
	rdb      *redis.Client
	store    *redisstore.Store
	updates  *redisstore.Updates
	server   *httpserver.Server
	debug    *httpserver.Server // nil unless DEBUG_ADDR is set
	metrics  *httpserver.Server // nil when METRICS_ADDR is off
	verifier *auth.Verifier
	routes   []*echo.Route
}

// New connects to Redis (lazily: the service starts while Redis is down and
// reports it on /readyz) and listens on cfg.HTTPAddr.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*App, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	verifier, err := auth.Start(ctx, cfg.Auth, 10*time.Second, logger)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("query: redis url: %w", err)
	}
	if opts.Protocol == 0 {
		// RESP2 unless the URL asks otherwise: the service uses nothing of
		// RESP3 (no client-side caching), and a RESP3 connection checks for
		// push notifications before every command.
		opts.Protocol = 2
	}
	rdb := redis.NewClient(opts)
	// Redis spans only when a tracer provider is installed (service.Main
	// installs it before New): otherwise the hook would build attributes
	// for spans that record nothing, on every command.
	if telemetry.Active() {
		if err := redistrace.Instrument(rdb); err != nil {
			return nil, errors.Join(fmt.Errorf("query: %w", err), rdb.Close())
		}
	}
	store, err := redisstore.New(rdb, cfg.RedisPrefix, logger)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("query: %w", err), rdb.Close())
	}
	updates := redisstore.NewUpdates(rdb, store, logger)

	reg := prometheus.NewRegistry()
	metrics, err := httpapi.NewMetrics(reg)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("query: %w", err), rdb.Close())
	}
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cart_query_min_version_waiters",
		Help: "?minVersion reads waiting for the read model now.",
	}, func() float64 { return float64(updates.Waiters()) })); err != nil {
		return nil, errors.Join(fmt.Errorf("query: register metrics: %w", err), rdb.Close())
	}
	e := httpserver.NewEcho(logger, reg, "query")
	httpserver.CORS(e, cfg.Limits)
	httpserver.Health(e, map[string]func(context.Context) error{"redis": store.Ping, "auth": verifier.Ready})
	httpapi.Register(e, verifier, store, httpapi.Options{
		Updates: updates, MinVersionWait: cfg.MinVersionWait, Metrics: metrics, Analytics: redisstore.NewAnalytics(rdb, cfg.RedisPrefix),
		Middleware: []echo.MiddlewareFunc{httpserver.RateLimit(cfg.Limits, logger)},
	})
	if err := openapi.Mount(e, api.OpenAPI); err != nil {
		return nil, errors.Join(fmt.Errorf("query: %w", err), rdb.Close())
	}

	server, err := httpserver.Listen(cfg.HTTPAddr, e, logger, httpserver.WithTimeouts(cfg.Timeouts))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("query: %w", err), rdb.Close())
	}
	debug, err := httpserver.ListenDebug(cfg.DebugAddr, logger)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("query: %w", err), server.Close(), rdb.Close())
	}
	metricsServer, err := httpserver.ListenMetrics(cfg.MetricsAddr, reg, logger)
	if err != nil {
		err = errors.Join(fmt.Errorf("query: %w", err), server.Close(), rdb.Close())
		if debug != nil {
			err = errors.Join(err, debug.Close())
		}
		return nil, err
	}
	return &App{logger: logger, rdb: rdb, store: store, updates: updates, server: server, debug: debug, metrics: metricsServer,
		verifier: verifier, routes: e.Routes()}, nil
}

// Routes are the HTTP routes the service serves; its OpenAPI document must
// describe each of them (a test checks).
func (a *App) Routes() []*echo.Route { return a.routes }

// Addr is the address the API listens on (the real port when cfg asked for
// ":0").
func (a *App) Addr() string { return a.server.Addr() }

// MetricsAddr is the management address serving /metrics, "" when off.
func (a *App) MetricsAddr() string {
	if a.metrics == nil {
		return ""
	}
	return a.metrics.Addr()
}

// Run serves requests, keeps the read-model generation fresh and holds the
// subscription to the projector's updates (which wakes ?minVersion reads)
// until ctx ends, then shuts the server down gracefully. It returns the
// first fatal error.
func (a *App) Run(ctx context.Context) error {
	parts := []service.Part{
		{Name: "http server", Run: a.server.Run},
		{Name: "generation refresher", Run: func(ctx context.Context) error { return a.store.Run(ctx, generationRefresh) }},
		{Name: "update subscription", Run: a.updates.Run},
		{Name: "signing keys", Run: a.verifier.Run},
	}
	if a.debug != nil {
		parts = append(parts, service.Part{Name: "profiler", Run: a.debug.Run})
	}
	if a.metrics != nil {
		parts = append(parts, service.Part{Name: "metrics server", Run: a.metrics.Run})
	}
	if err := service.RunAll(ctx, parts...); err != nil {
		return fmt.Errorf("query: %w", err)
	}
	return nil
}

// Close releases the Redis connections. Call it after Run returned.
func (a *App) Close() error {
	if err := a.rdb.Close(); err != nil {
		return fmt.Errorf("query: close redis: %w", err)
	}
	return nil
}
