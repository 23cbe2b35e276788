// Command command is the write side of Cart CQRS: it validates cart commands,
// appends their events and outbox rows to PostgreSQL in one transaction, and
// relays the outbox to NATS JetStream.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cart-cqrs/cart/services/command/app"
)

func main() {
	level := new(slog.LevelVar) // info until the configuration says otherwise
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(logger, level); err != nil {
		logger.Error("command: stopped", "error", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger, level *slog.LevelVar) error {
	cfg, err := app.ConfigFromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	level.Set(cfg.LogLevel)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	logger.Info("command: started", "addr", a.Addr(), "stream", cfg.Relay.Stream, "relay", cfg.RelayEnabled)
	runErr := a.Run(ctx)
	if err := a.Close(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}
