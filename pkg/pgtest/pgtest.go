// Package pgtest gives each test its own PostgreSQL database with the cart
// schema applied, so tests (and concurrent test runs) never see each other's
// rows. The server is $DATABASE_URL, else the local default, else a
// testcontainers PostgreSQL when a Docker engine answers; without any of
// them tests are skipped, or fail when CI=true.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cart-cqrs/cart/pkg/internal/testserver"
)

// opTimeout bounds each administrative step; building the template the
// first time includes waiting for another binary that is building it.
const opTimeout = 2 * time.Minute

// MustDatabase creates a new database with every migration applied and
// returns its URL. The database is dropped when the test ends.
func MustDatabase(tb testing.TB) string {
	tb.Helper()
	adminURL := server.Must(tb)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	tpl, err := template(ctx, adminURL)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return mustCreate(tb, adminURL, "TEMPLATE "+ident(tpl))
}

// MustEmptyDatabase creates a new database without the cart schema and
// returns its URL; it is for testing the migrations themselves. The database
// is dropped when the test ends.
func MustEmptyDatabase(tb testing.TB) string {
	tb.Helper()
	return mustCreate(tb, server.Must(tb), "")
}

// MustPool is MustDatabase plus a pool connected to it, closed when the
// test ends.
func MustPool(tb testing.TB) (*pgxpool.Pool, string) {
	tb.Helper()
	dbURL := MustDatabase(tb)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		tb.Fatalf("pgtest: pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool, dbURL
}

func mustCreate(tb testing.TB, adminURL, options string) string {
	tb.Helper()
	name := "cart_test_" + testserver.RandomHex(8)
	dbURL, err := withDatabase(adminURL, name)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	if err := admin(adminURL, strings.TrimSpace("CREATE DATABASE "+ident(name)+" "+options)); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		// FORCE ends sessions the test left open (e.g. a pool it forgot).
		if err := admin(adminURL, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return dbURL
}

// admin runs one statement on its own short-lived connection: CREATE and
// DROP DATABASE cannot run inside a transaction or a pool's reset logic.
func admin(adminURL, stmt string) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := conn.Close(ctx); cerr != nil && err == nil {
			err = cerr
		}
	}()
	_, err = conn.Exec(ctx, stmt)
	return err
}

// withDatabase returns adminURL pointing at database name instead. Both URL
// and keyword/value connection strings are accepted, like pgx does.
func withDatabase(adminURL, name string) (string, error) {
	if strings.HasPrefix(adminURL, "postgres://") || strings.HasPrefix(adminURL, "postgresql://") {
		u, err := url.Parse(adminURL)
		if err != nil {
			return "", fmt.Errorf("parse database url: %w", err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		q := u.Query()
		if q.Has("dbname") {
			q.Set("dbname", name)
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	// In keyword/value form a later keyword overrides an earlier one.
	return adminURL + " dbname=" + name, nil
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }
