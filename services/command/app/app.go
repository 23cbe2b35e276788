// Package app is the command service's composition root: from a Config it
// builds the PostgreSQL pool (applying migrations), the NATS connection and
// stream, the repository, the HTTP API and the outbox relay; it runs the HTTP
// server and the relay together and releases everything on Close. main and
// the end-to-end tests start the service through it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cart-cqrs/cart/migrations"
	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/openapi"
	"github.com/cart-cqrs/cart/pkg/service"
	"github.com/cart-cqrs/cart/services/command/api"
	"github.com/cart-cqrs/cart/services/command/internal/httpapi"
	"github.com/cart-cqrs/cart/services/command/internal/postgres"
	"github.com/cart-cqrs/cart/services/command/internal/relay"
)

var _ httpapi.Carts = (*postgres.Repository)(nil)

const (
	// serviceName identifies this service's connections in NATS and
	// PostgreSQL monitoring.
	serviceName = "cart-command"
	// startTimeout bounds each start-up step that talks to a dependency.
	startTimeout = 10 * time.Second
	// streamRetry is the pause between attempts to create the stream when
	// NATS was not reachable at start.
	streamRetry = 2 * time.Second
	// drainTimeout bounds how long Close waits for NATS to drain.
	drainTimeout = 5 * time.Second
)

// App is a command service.
type App struct {
	logger    *slog.Logger
	pool      *pgxpool.Pool
	nc        *nats.Conn
	ncClosed  chan struct{}
	js        jetstream.JetStream
	relayOpts relay.Options
	relay     *relay.Relay // nil when the relay is disabled
	repo      *postgres.Repository
	server    *httpserver.Server
	debug     *httpserver.Server // nil unless DEBUG_ADDR is set
	metrics   *httpserver.Server // nil when METRICS_ADDR is off
	routes    []*echo.Route
	verifier  *auth.Verifier

	streamMu    sync.Mutex
	streamReady bool
}

// New connects to PostgreSQL (applying migrations when cfg.Migrate) and NATS,
// makes sure the stream exists, builds the API and listens on cfg.HTTPAddr.
// NATS being down does not stop the service from starting: commands are
// accepted into the outbox and the relay publishes once NATS is back.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (_ *App, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("command: config: %w", err)
	}
	verifier, err := auth.Start(ctx, cfg.Auth, startTimeout, logger)
	if err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	a := &App{logger: logger, ncClosed: make(chan struct{}), relayOpts: cfg.Relay, verifier: verifier}
	if cfg.RelayAfterPublish != nil {
		a.relayOpts.AfterPublish = cfg.RelayAfterPublish
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, a.Close())
		}
	}()

	if cfg.Migrate {
		mctx, cancel := context.WithTimeout(ctx, 5*time.Minute) // waits for other instances' migrations
		err := migrations.Up(mctx, cfg.DatabaseURL, logger)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("command: %w", err)
		}
	}
	if a.pool, err = openPool(ctx, cfg); err != nil {
		return nil, err
	}
	if err := a.connectNATS(ctx, cfg); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	if err := a.ensureStream(sctx); err != nil {
		logger.WarnContext(ctx, "stream not ensured yet; the relay retries", "stream", cfg.Relay.Stream, "error", err)
	}
	cancel()

	repoOpts := []postgres.Option{
		postgres.WithSnapshotEvery(cfg.SnapshotEvery),
		postgres.WithStateCache(cfg.StateCacheSize),
		postgres.WithConflictRetries(cfg.ConflictRetries),
		postgres.WithIdempotencyTTL(cfg.IdempotencyTTL),
		postgres.WithGroupCommit(cfg.CommitWorkers, cfg.CommitGroupMax),
	}
	if cfg.RelayEnabled {
		// While it leads, the relay takes this instance's commits straight
		// from the repository.
		a.relay = relay.New(a.pool, a.js, a.relayOpts, logger)
		repoOpts = append(repoOpts, postgres.WithRelay(a.relay))
	}
	a.repo = postgres.New(a.pool, repoOpts...)

	reg := prometheus.NewRegistry()
	e := httpserver.NewEcho(logger, reg, "command")
	httpserver.CORS(e, cfg.Limits)
	httpserver.Health(e, map[string]func(context.Context) error{
		"postgres": a.pool.Ping,
		"nats":     a.natsConnected,
		"auth":     verifier.Ready,
	})
	if err := a.registerMetrics(reg); err != nil {
		return nil, fmt.Errorf("command: metrics: %w", err)
	}
	if err := httpapi.Mount(e, a.repo, verifier, reg, httpserver.RateLimit(cfg.Limits, logger)); err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	if err := openapi.Mount(e, api.OpenAPI); err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	// The AsyncAPI document of the events the relay publishes, for the teams
	// that subscribe: static, embedded.
	e.GET("/asyncapi.yaml", func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		return c.Blob(http.StatusOK, "application/yaml", api.AsyncAPI)
	})
	a.routes = e.Routes()
	if a.server, err = httpserver.Listen(cfg.HTTPAddr, e, logger, httpserver.WithTimeouts(cfg.Timeouts)); err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	if a.debug, err = httpserver.ListenDebug(cfg.DebugAddr, logger); err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	if a.metrics, err = httpserver.ListenMetrics(cfg.MetricsAddr, reg, logger); err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	return a, nil
}

// Routes are the HTTP routes the service serves; its OpenAPI document must
// describe each of them (a test checks).
func (a *App) Routes() []*echo.Route { return a.routes }

func openPool(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("command: database url: %w", err)
	}
	pcfg.MaxConns = int32(cfg.DatabaseMaxConns)
	if pcfg.ConnConfig.RuntimeParams["application_name"] == "" {
		pcfg.ConnConfig.RuntimeParams["application_name"] = serviceName
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("command: postgres pool: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("command: postgres: %w", err)
	}
	return pool, nil
}

// connectNATS connects for good: the client reconnects forever, and a NATS
// that is down at start is retried in the background.
func (a *App) connectNATS(ctx context.Context, cfg Config) error {
	nc, err := nats.Connect(cfg.NATSURL,
		nats.Name(serviceName),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		// A publish while disconnected fails rather than waits in a buffer
		// that is flushed on reconnect: the relay checks a server it reaches
		// anew before it publishes to it (see internal/relay/verify.go).
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			a.logger.Warn("nats disconnected", "error", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			a.logger.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(a.ncClosed) }),
	)
	if err != nil {
		return fmt.Errorf("command: nats connect: %w", err)
	}
	a.nc = nc
	publishTimeout := cfg.Relay.PublishTimeout
	if publishTimeout <= 0 {
		publishTimeout = relay.DefaultPublishTimeout
	}
	if a.js, err = jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishTimeout)); err != nil {
		return fmt.Errorf("command: jetstream: %w", err)
	}
	a.logger.InfoContext(ctx, "nats connecting", "url", nc.ConnectedUrlRedacted(), "status", nc.Status().String())
	return nil
}

func (a *App) natsConnected(context.Context) error {
	if s := a.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("nats: connection %s", s)
	}
	return nil
}

// ensureStream creates or updates the stream once per App.
func (a *App) ensureStream(ctx context.Context) error {
	a.streamMu.Lock()
	defer a.streamMu.Unlock()
	if a.streamReady {
		return nil
	}
	if _, err := relay.EnsureStream(ctx, a.js, a.relayOpts); err != nil {
		return fmt.Errorf("command: %w", err)
	}
	a.streamReady = true
	return nil
}

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

// RelayIsLeader reports whether this instance's relay currently publishes
// the outbox (false when the relay is disabled).
func (a *App) RelayIsLeader() bool { return a.relay != nil && a.relay.IsLeader() }

// Run serves requests and runs the relay and the idempotency key cleanup
// until ctx ends, then stops them gracefully. One of them failing stops the
// others; Run waits for all and returns the first fatal error.
func (a *App) Run(ctx context.Context) error {
	parts := []service.Part{
		{Name: "http server", Run: a.server.Run},
		{Name: "idempotency key cleanup", Run: a.runKeyCleanup},
		{Name: "signing keys", Run: a.verifier.Run},
	}
	if a.relay != nil {
		parts = append(parts, service.Part{Name: "relay", Run: a.runRelay})
	}
	if a.debug != nil {
		parts = append(parts, service.Part{Name: "profiler", Run: a.debug.Run})
	}
	if a.metrics != nil {
		parts = append(parts, service.Part{Name: "metrics server", Run: a.metrics.Run})
	}
	if err := service.RunAll(ctx, parts...); err != nil {
		return fmt.Errorf("command: %w", err)
	}
	return nil
}

// runRelay makes sure the stream exists (NATS may have been down at start),
// then runs the relay.
func (a *App) runRelay(ctx context.Context) error {
	for {
		sctx, cancel := context.WithTimeout(ctx, startTimeout)
		err := a.ensureStream(sctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		a.logger.WarnContext(ctx, "stream not ensured; retrying", "after", streamRetry, "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(streamRetry):
		}
	}
	return a.relay.Run(ctx)
}

// Close releases the port, drains NATS and closes the pool. Call it after
// Run returned (or instead of Run); it is safe on a partly built App.
func (a *App) Close() error {
	var errs []error
	for _, srv := range []*httpserver.Server{a.server, a.debug, a.metrics} {
		if srv != nil {
			if err := srv.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if a.nc != nil {
		errs = append(errs, a.drainNATS())
	}
	if a.repo != nil {
		a.repo.Close()
	}
	if a.pool != nil {
		a.pool.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("command: close: %w", err)
	}
	return nil
}

func (a *App) drainNATS() error {
	if err := a.nc.Drain(); err != nil {
		a.nc.Close()
		// Closed already, or never connected: nothing was in flight.
		if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) {
			return nil
		}
		return fmt.Errorf("nats drain: %w", err)
	}
	select {
	case <-a.ncClosed:
		return nil
	case <-time.After(drainTimeout):
		a.nc.Close()
		return fmt.Errorf("nats drain: not finished after %v", drainTimeout)
	}
}
