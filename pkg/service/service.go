// Package service runs one service's app as a process: structured logs on
// stderr (LOG_LEVEL, LOG_FORMAT) tagged with trace and correlation ids,
// tracing when OTEL_* asks for it (package telemetry), the app built from
// the environment, run until SIGINT or SIGTERM and closed, and the outcome
// as the exit code. Each service's main is one call to Main.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/cart-cqrs/cart/pkg/envconf"
	"github.com/cart-cqrs/cart/pkg/telemetry"
)

// DefaultMemoryLimit is the Go runtime's soft memory limit of a service
// whose environment sets no GOMEMLIMIT. A service's live heap is a few
// megabytes (its caches are bounded); the collector leaves garbage up to as
// much again, and the runtime hands freed memory back to the system slowly,
// so under load a service's resident size grew past 50 MB without a limit.
// With it, the collector runs more often only as the heap nears it (a few
// per cent more CPU at full load). GOMEMLIMIT (Go's own variable, e.g.
// 64MiB, or "off") overrides it for a service whose caches are made larger.
const DefaultMemoryLimit = 26 << 20

// App is what each service's composition root builds.
type App interface {
	Addr() string
	Run(ctx context.Context) error
	Close() error
}

// Main runs the service named name and exits: 0 after a clean stop, 1 when
// the configuration is wrong, the app cannot start, or it fails.
func Main[C any, A App](
	name string,
	configFromEnv func(lookup func(string) (string, bool)) (C, error),
	newApp func(ctx context.Context, cfg C, logger *slog.Logger) (A, error),
) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.LookupEnv, os.Stderr, name, configFromEnv, newApp)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

// run is Main until ctx ends (a signal), without the exit.
func run[C any, A App](
	ctx context.Context, lookup func(string) (string, bool), stderr io.Writer, name string,
	configFromEnv func(lookup func(string) (string, bool)) (C, error),
	newApp func(ctx context.Context, cfg C, logger *slog.Logger) (A, error),
) error {
	logger, err := newLogger(lookup, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return err
	}
	logger = logger.With("service", name)
	if _, ok := lookup("GOMEMLIMIT"); !ok {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(DefaultMemoryLimit))
	}
	shutdownTracing, err := telemetry.Setup(ctx, lookup, name)
	if err != nil {
		logger.Error("tracing", "err", err)
		return err
	}
	defer func() {
		// The spans of the last requests are still buffered: send them.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			logger.Warn("tracing: stop", "err", err)
		}
	}()
	cfg, err := configFromEnv(lookup)
	if err != nil {
		logger.Error("configuration", "err", err)
		return err
	}
	a, err := newApp(ctx, cfg, logger)
	if err != nil {
		logger.Error("start", "err", err)
		return err
	}
	logger.Info("started", "addr", a.Addr())
	err = a.Run(ctx)
	if cerr := a.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		logger.Error("stopped", "err", err)
		return err
	}
	logger.Info("stopped")
	return nil
}

// newLogger builds the process's logger: JSON by default (for log
// shippers), text for people (LOG_FORMAT=text, which make run sets).
func newLogger(lookup func(string) (string, bool), w io.Writer) (*slog.Logger, error) {
	r := envconf.New(lookup)
	opts := &slog.HandlerOptions{Level: r.Level("LOG_LEVEL", slog.LevelInfo)}
	format := r.String("LOG_FORMAT", "json")
	if err := r.Err(); err != nil {
		return nil, err
	}
	switch format {
	case "json":
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts))), nil
	case "text":
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("envconf: LOG_FORMAT=%q: want json or text", format)
}
