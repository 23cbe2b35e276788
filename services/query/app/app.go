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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/services/query/internal/httpapi"
	"github.com/cart-cqrs/cart/services/query/internal/redisstore"
)

// generationRefresh is how often the service re-reads which read-model
// generation is current; a rebuild's switch is seen within this lag.
const generationRefresh = time.Second

var _ httpapi.Carts = (*redisstore.Store)(nil)

// App is a running query service.
type App struct {
	logger *slog.Logger
	rdb    *redis.Client
	store  *redisstore.Store
	server *httpserver.Server
}

// New connects to Redis (lazily: the service starts while Redis is down and
// reports it on /readyz) and listens on cfg.HTTPAddr.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*App, error) {
	verifier, err := auth.NewVerifier(cfg.Auth)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	if cfg.Auth.Disabled {
		logger.WarnContext(ctx, "authentication is DISABLED: callers are trusted by header (development only)")
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("query: redis url: %w", err)
	}
	rdb := redis.NewClient(opts)
	store := redisstore.New(rdb, cfg.RedisPrefix, logger)

	reg := prometheus.NewRegistry()
	e := httpserver.NewEcho(logger, reg, "query")
	httpserver.Health(e, reg, map[string]func(context.Context) error{"redis": store.Ping})
	httpapi.Register(e, verifier, store)

	server, err := httpserver.Listen(cfg.HTTPAddr, e, logger)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("query: %w", err), rdb.Close())
	}
	return &App{logger: logger, rdb: rdb, store: store, server: server}, nil
}

// Addr is the address the API listens on (the real port when cfg asked for
// ":0").
func (a *App) Addr() string { return a.server.Addr() }

// Run serves requests and keeps the read-model generation fresh until ctx
// ends, then shuts the server down gracefully. It returns the first fatal
// error.
func (a *App) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		errs = make([]error, 2)
	)
	run := func(i int, f func(context.Context) error) {
		wg.Go(func() {
			errs[i] = f(ctx)
			cancel() // one part stopping stops the other
		})
	}
	run(0, a.server.Run)
	run(1, func(ctx context.Context) error { return a.store.Run(ctx, generationRefresh) })
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
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
