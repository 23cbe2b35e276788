// Package migrations owns the PostgreSQL schema of the cart: the append-only
// event store, the write-side cart registry and snapshots, the outbox and the
// product catalog. The SQL files are embedded, so every service binary can
// bring a database up to date on start; a session-level advisory lock makes it
// safe for several instances to do that at the same time.
package migrations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Instances that lose the race for the lock poll for it every second (goose's
// minimum), for up to five minutes. The default 5 s poll would make N
// instances starting together wait up to 5·(N-1) s for nothing.
const (
	lockPollSeconds = 1
	lockPolls       = 300
)

// Up applies every pending migration to the database at databaseURL.
// A nil logger discards goose's log lines.
func Up(ctx context.Context, databaseURL string, logger *slog.Logger) (err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("migrations: up: parse database url: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("migrations: up: close: %w", cerr))
		}
	}()

	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(lockPollSeconds, lockPolls))
	if err != nil {
		return fmt.Errorf("migrations: up: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, FS(),
		goose.WithSessionLocker(locker),
		goose.WithSlog(logger),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("migrations: up: %w", err)
	}
	// provider.Close only closes db, which the deferred db.Close above does.
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrations: up: %w", err)
	}
	return nil
}

// EnsureDatabase creates the database named in databaseURL if it does not
// exist, connecting to the same server's "postgres" maintenance database.
// It is meant for local development ("make run"); in production the database
// is provisioned by whoever owns the server.
func EnsureDatabase(ctx context.Context, databaseURL string) (err error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("migrations: ensure database: parse database url: %w", err)
	}
	name := cfg.Database
	if name == "" {
		return errors.New("migrations: ensure database: the url names no database")
	}
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("migrations: ensure database %q: connect: %w", name, err)
	}
	defer func() {
		if cerr := conn.Close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("migrations: ensure database %q: close: %w", name, cerr))
		}
	}()

	var exists bool
	if err := conn.QueryRow(ctx,
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name,
	).Scan(&exists); err != nil {
		return fmt.Errorf("migrations: ensure database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil && !alreadyExists(err) {
		return fmt.Errorf("migrations: ensure database %q: create: %w", name, err)
	}
	return nil
}

// alreadyExists reports whether a CREATE DATABASE lost a race with another
// one. PostgreSQL reports that as 42P04 (duplicate_database) or, when both
// got past the existence check, as a unique violation on pg_database's name
// index.
func alreadyExists(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "42P04" ||
		(pgErr.Code == "23505" && pgErr.ConstraintName == "pg_database_datname_index")
}
