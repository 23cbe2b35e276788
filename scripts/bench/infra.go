package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/migrations"
	"github.com/cart-cqrs/cart/pkg/rediskeys"
)

// resetDatabase drops the database named in url, with whatever is still
// connected to it, and creates it empty: every benchmark starts from the
// same state. The name must be the benchmark's own.
func resetDatabase(ctx context.Context, dbURL string) (err error) {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return fmt.Errorf("reset database: %w", err)
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("reset database %s: %w", name, err)
	}
	defer func() {
		if cerr := conn.Close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("reset database %s: close: %w", name, cerr))
		}
	}()
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("reset database %s: drop: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return fmt.Errorf("reset database %s: create: %w", name, err)
	}
	return nil
}

// migratedDatabase resets the database and applies the product's
// migrations, so that its tables and triggers are the real ones.
func migratedDatabase(ctx context.Context, dbURL string) error {
	if err := resetDatabase(ctx, dbURL); err != nil {
		return err
	}
	if err := migrations.Up(ctx, dbURL, nil); err != nil {
		return fmt.Errorf("migrate %s: %w", dbURL, err)
	}
	return nil
}

// withDatabase is a postgres:// URL naming another database.
func withDatabase(rawURL, name string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("database url %q: want postgres://…", rawURL)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// deleteKeys unlinks every Redis key under prefix.
func deleteKeys(ctx context.Context, rdb *redis.Client, prefix string) error {
	if _, err := rediskeys.UnlinkMatching(ctx, rdb, prefix+"*"); err != nil {
		return fmt.Errorf("delete %s*: %w", prefix, err)
	}
	return nil
}
