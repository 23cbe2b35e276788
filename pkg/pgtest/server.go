package pgtest

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/cart-cqrs/cart/pkg/internal/testserver"
)

// server is the PostgreSQL server this test binary uses; its URL is an admin
// URL: a database tests may connect to in order to create others.
var server = testserver.New(testserver.Spec{
	Helper: "pgtest", Name: "PostgreSQL", EnvVar: "DATABASE_URL",
	// The local server "make run" uses.
	DefaultURL: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
	Ping: func(ctx context.Context, url string) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	},
	Start: func(ctx context.Context) (string, error) {
		ctr, err := tcpostgres.Run(ctx, "postgres:17-alpine", tcpostgres.BasicWaitStrategies())
		if err != nil {
			return "", err
		}
		u, err := ctr.ConnectionString(ctx, "sslmode=disable")
		if err != nil {
			return "", fmt.Errorf("container address: %w", err)
		}
		return u, nil
	},
})
