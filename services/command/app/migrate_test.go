package app_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/services/command/app"
)

func TestMigrate(t *testing.T) {
	dbURL := pgtest.MustEmptyDatabase(t)
	env := map[string]string{"DATABASE_URL": dbURL}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for range 2 { // the second run has nothing to do
		if err := app.Migrate(t.Context(), lookup, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM products`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("products after Migrate: %d (%v)", n, err)
	}
	env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"
	if err := app.Migrate(t.Context(), lookup, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("Migrate against no server succeeded")
	}
}
