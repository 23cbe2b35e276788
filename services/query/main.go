// Command query serves the cart read model from Redis: GET /v1/carts/{id}
// and GET /v1/customers/me/cart, plus /healthz, /readyz and /metrics.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cart-cqrs/cart/services/query/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := app.ConfigFromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		logger.Error("start", slog.Any("error", err))
		return err
	}
	logger.Info("query service listening", slog.String("addr", a.Addr()))
	runErr := a.Run(ctx)
	if err := a.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		logger.Error("stopped", slog.Any("error", runErr))
		return runErr
	}
	logger.Info("stopped")
	return nil
}
