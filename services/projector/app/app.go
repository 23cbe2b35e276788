// Package app is the projector's composition root: it builds the projector
// from a Config, serves its health, metrics and admin API, and runs until
// its context ends. main.go and the end-to-end tests start it the same way;
// Rebuild is the `projector rebuild` command.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/httpserver"
	"github.com/cart-cqrs/cart/pkg/service"
	"github.com/cart-cqrs/cart/pkg/telemetry"
	"github.com/cart-cqrs/cart/pkg/telemetry/redistrace"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
	"github.com/cart-cqrs/cart/services/projector/internal/httpapi"
	"github.com/cart-cqrs/cart/services/projector/internal/postgres"
)

// App is a running projector.
type App struct {
	logger   *slog.Logger
	pool     *pgxpool.Pool
	nc       *nats.Conn
	rdb      *goredis.Client
	proj     *projections
	engine   *engine.Engine
	rebuilds *rebuilds
	verifier *auth.Verifier
	server   *httpserver.Server
	debug    *httpserver.Server // nil unless DEBUG_ADDR is set
	metrics  *httpserver.Server // nil when METRICS_ADDR is off
	routes   []*echo.Route
}

// New connects to PostgreSQL, NATS and Redis and binds the HTTP address.
// Dependencies that are down do not fail New: the projector waits for them
// and /readyz says what is missing. Only the configuration and the port can.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (_ *App, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	a := &App{logger: logger}
	defer func() {
		if err != nil {
			err = errors.Join(err, a.Close())
		}
	}()
	if a.verifier, err = auth.Start(ctx, cfg.Auth, 10*time.Second, logger); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}

	if a.pool, err = postgres.NewPool(ctx, cfg.DatabaseURL); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	ropts, err := goredis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("app: redis url: %w", err)
	}
	a.rdb = goredis.NewClient(ropts)
	// Redis spans only when a tracer provider is installed (service.Main
	// installs it before New): otherwise the hook formats every pipeline
	// for spans that record nothing.
	if telemetry.Active() {
		if err := redistrace.Instrument(a.rdb); err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
	}
	a.nc, err = nats.Connect(cfg.NATSURL,
		nats.Name("cart-projector"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("nats: disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { logger.Info("nats: reconnected", "url", nc.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		return nil, fmt.Errorf("app: nats: %w", err)
	}
	js, err := jetstream.New(a.nc)
	if err != nil {
		return nil, fmt.Errorf("app: jetstream: %w", err)
	}

	reg := prometheus.NewRegistry()
	metrics, err := engine.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	docMetrics, err := documents.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a.proj = newProjections(cfg, a.rdb, a.pool, metrics, docMetrics, logger)
	a.engine = engine.New(engine.Config{
		Stream: cfg.Stream, SubjectPrefix: cfg.SubjectPrefix, Durable: cfg.Durable,
		BatchSize: cfg.BatchSize, AckWait: cfg.AckWait, MaxAckPending: cfg.MaxAckPending,
		TrailingWindow: cfg.TrailingWindow,
	}, js, metrics, logger, a.proj.all...)
	a.rebuilds = newRebuilds(a.proj.builders, logger)
	if err := reg.Register(a.engine.ConsumerCollector()); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}

	e := httpserver.NewEcho(logger, reg, "projector")
	// A build (which may take minutes) is no readiness check: it must not
	// take the projector out of service. Its metrics say how it fares.
	httpserver.Health(e, map[string]func(context.Context) error{
		"postgres": a.pool.Ping,
		"redis":    func(ctx context.Context) error { return a.rdb.Ping(ctx).Err() },
		"nats": func(context.Context) error {
			if s := a.nc.Status(); s != nats.CONNECTED {
				return fmt.Errorf("nats: %s", s)
			}
			return nil
		},
		"consumer": func(context.Context) error {
			if !a.engine.Attached() {
				return errors.New("projector: consumer not attached")
			}
			return nil
		},
		"auth": a.verifier.Ready,
	})
	httpapi.Register(e, a.verifier, a.proj.documents, a.rebuilds)
	a.routes = e.Routes()
	if a.server, err = httpserver.Listen(cfg.HTTPAddr, e, logger, httpserver.WithTimeouts(cfg.Timeouts)); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if a.debug, err = httpserver.ListenDebug(cfg.DebugAddr, logger); err != nil {
		return nil, errors.Join(fmt.Errorf("app: %w", err), a.server.Close())
	}
	if a.metrics, err = httpserver.ListenMetrics(cfg.MetricsAddr, reg, logger); err != nil {
		err = errors.Join(fmt.Errorf("app: %w", err), a.server.Close())
		if a.debug != nil {
			err = errors.Join(err, a.debug.Close())
		}
		return nil, err
	}
	return a, nil
}

// Routes are the HTTP routes the projector serves; its OpenAPI document
// must describe each.
func (a *App) Routes() []*echo.Route { return a.routes }

// Addr is the bound HTTP address.
func (a *App) Addr() string { return a.server.Addr() }

// MetricsAddr is the management address serving /metrics, "" when off.
func (a *App) MetricsAddr() string {
	if a.metrics == nil {
		return ""
	}
	return a.metrics.Addr()
}

// Run projects and serves until ctx ends, then finishes the batch in hand
// and the in-flight requests. It returns the errors that stopped it.
func (a *App) Run(ctx context.Context) error {
	parts := []service.Part{
		{Name: "projections", Run: a.engine.Run},
		{Name: "parked events gauge", Run: a.proj.documents.RunParkedGauge},
		{Name: "rebuilds", Run: a.rebuilds.Run},
		{Name: "http server", Run: a.server.Run},
		{Name: "signing keys", Run: a.verifier.Run},
	}
	if a.debug != nil {
		parts = append(parts, service.Part{Name: "profiler", Run: a.debug.Run})
	}
	if a.metrics != nil {
		parts = append(parts, service.Part{Name: "metrics server", Run: a.metrics.Run})
	}
	for _, b := range a.proj.builders {
		parts = append(parts, service.Part{Name: b.Name() + " builds", Run: b.Run})
	}
	err := service.RunAll(ctx, parts...)
	if err != nil {
		return fmt.Errorf("projector: %w", err)
	}
	return nil
}

// Close releases the connections. It is safe after Run returned.
func (a *App) Close() error {
	var errs []error
	if a.server != nil {
		errs = append(errs, a.server.Close())
	}
	if a.debug != nil {
		errs = append(errs, a.debug.Close())
	}
	if a.metrics != nil {
		errs = append(errs, a.metrics.Close())
	}
	if a.nc != nil {
		if !a.nc.IsClosed() {
			// Acks are fire-and-forget publishes: send what is buffered.
			if err := a.nc.FlushTimeout(2 * time.Second); err != nil && a.nc.IsConnected() {
				errs = append(errs, fmt.Errorf("app: nats flush: %w", err))
			}
		}
		a.nc.Close()
	}
	if a.rdb != nil {
		if err := a.rdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("app: redis close: %w", err))
		}
	}
	if a.pool != nil {
		a.pool.Close()
	}
	return errors.Join(errs...)
}
