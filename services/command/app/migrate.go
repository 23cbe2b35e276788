package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cart-cqrs/cart/migrations"
	"github.com/cart-cqrs/cart/pkg/envconf"
)

// Migrate applies the pending migrations to DATABASE_URL and returns: the
// `command migrate` step of a least-privilege deployment, run as the tables'
// owner before the service starts with MIGRATE=false under its own role.
// It reads nothing else from the environment.
func Migrate(ctx context.Context, lookup func(string) (string, bool), logger *slog.Logger) error {
	r := envconf.New(lookup)
	dbURL := r.String("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cart?sslmode=disable")
	if err := r.Err(); err != nil {
		return fmt.Errorf("command migrate: %w", err)
	}
	if err := migrations.Up(ctx, dbURL, logger); err != nil {
		return fmt.Errorf("command migrate: %w", err)
	}
	return nil
}
