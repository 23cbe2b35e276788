// Command projector keeps the cart read models in Redis up to date from the
// cart event stream in NATS JetStream.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cart-cqrs/cart/services/projector/app"
)

func main() {
	level := new(slog.LevelVar) // info until the configuration says otherwise
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(logger, level); err != nil {
		logger.Error("projector: stopped", "err", err)
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
	logger.Info("projector: started", "addr", a.Addr(), "stream", cfg.Stream, "durable", cfg.Durable)
	runErr := a.Run(ctx)
	if err := a.Close(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}
