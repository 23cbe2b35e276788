package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/cart-cqrs/cart/migrations"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
)

func TestUp_twiceIsNoOp(t *testing.T) {
	ctx := t.Context()
	dbURL := pgtest.MustEmptyDatabase(t)
	if err := migrations.Up(ctx, dbURL, nil); err != nil {
		t.Fatalf("first Up: %v", err)
	}
	conn := mustConnect(t, dbURL)
	first := appliedVersions(t, conn)
	if len(first) == 0 {
		t.Fatal("first Up recorded no migrations")
	}
	if err := migrations.Up(ctx, dbURL, nil); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if second := appliedVersions(t, conn); len(second) != len(first) {
		t.Errorf("second Up applied migrations again: %d rows, then %d", len(first), len(second))
	}
}

func TestUp_concurrentInstances(t *testing.T) {
	dbURL := pgtest.MustEmptyDatabase(t)
	const instances = 5
	errs := make([]error, instances)
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() { errs[i] = migrations.Up(t.Context(), dbURL, nil) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Up: %v", err)
	}
	conn := mustConnect(t, dbURL)
	versions := appliedVersions(t, conn)
	seen := make(map[int64]bool)
	for _, v := range versions {
		if seen[v] {
			t.Errorf("migration %d applied more than once", v)
		}
		seen[v] = true
	}
}

func TestEventsAreAppendOnly(t *testing.T) {
	ctx := t.Context()
	dbURL := pgtest.MustDatabase(t)
	conn := mustConnect(t, dbURL)
	if _, err := conn.Exec(ctx, `
		INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, occurred_at)
		VALUES (gen_random_uuid(), gen_random_uuid(), 'cart', 1, 'cart.opened', 1, '{}', now())`); err != nil {
		t.Fatalf("append: %v", err)
	}
	for name, stmt := range map[string]string{
		"UPDATE":   "UPDATE events SET type = 'rewritten'",
		"DELETE":   "DELETE FROM events",
		"TRUNCATE": "TRUNCATE events",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := conn.Exec(ctx, stmt)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "23001" || pgErr.Message != "events are append-only" {
				t.Fatalf("%s: got %v, want SQLSTATE 23001 \"events are append-only\"", name, err)
			}
		})
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM events WHERE type = 'cart.opened'").Scan(&n); err != nil || n != 1 {
		t.Errorf("events after rejected changes: %d (err %v), want 1", n, err)
	}
}

// The relay is woken by the commits themselves (in-process, or one NOTIFY
// per group commit), not by a trigger on every outbox insert.
func TestOutboxHasNoTrigger(t *testing.T) {
	conn := mustConnect(t, pgtest.MustDatabase(t))
	var n int
	if err := conn.QueryRow(t.Context(),
		`SELECT count(*) FROM pg_trigger WHERE tgrelid = 'outbox'::regclass AND NOT tgisinternal`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("outbox has %d triggers, want none", n)
	}
}

func TestSeededProducts(t *testing.T) {
	conn := mustConnect(t, pgtest.MustDatabase(t))
	want := map[string]struct {
		name  string
		price int64
	}{
		"123": {"Espresso beans 1 kg", 1899},
		"456": {"Ceramic mug", 1250},
		"789": {"Milk frother", 3499},
	}
	for id, w := range want {
		var (
			name      string
			price     int64
			currency  string
			available bool
		)
		err := conn.QueryRow(t.Context(),
			"SELECT name, unit_price, currency, available FROM products WHERE product_id = $1", id,
		).Scan(&name, &price, &currency, &available)
		if err != nil {
			t.Errorf("product %s: %v", id, err)
			continue
		}
		if name != w.name || price != w.price || currency != "EUR" || !available {
			t.Errorf("product %s = %q %d %s available=%v, want %q %d EUR available", id, name, price, currency, available, w.name, w.price)
		}
	}
	var unavailable int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM products WHERE NOT available").Scan(&unavailable); err != nil || unavailable == 0 {
		t.Errorf("no unavailable product seeded (err %v)", err)
	}
}

func TestDownReversesUp(t *testing.T) {
	ctx := t.Context()
	dbURL := pgtest.MustEmptyDatabase(t)
	if err := migrations.Up(ctx, dbURL, nil); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS(), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.DownTo(ctx, 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	var leftovers []string
	rows, err := db.QueryContext(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relname NOT LIKE 'goose_db_version%'
		UNION ALL
		SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		leftovers = append(leftovers, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(leftovers) > 0 {
		t.Errorf("objects left after migrating down to 0: %v", leftovers)
	}
	if err := migrations.Up(ctx, dbURL, nil); err != nil {
		t.Errorf("up after down: %v", err)
	}
}

func TestEnsureDatabase(t *testing.T) {
	ctx := t.Context()
	existing := pgtest.MustEmptyDatabase(t)
	if err := migrations.EnsureDatabase(ctx, existing); err != nil {
		t.Fatalf("existing database: %v", err)
	}

	u, err := url.Parse(existing)
	if err != nil || u.Scheme == "" {
		t.Skipf("DATABASE_URL is not in URL form: %v", err)
	}
	name := strings.TrimPrefix(u.Path, "/") + "_ensured"
	u.Path = "/" + name
	admin := mustConnect(t, existing)
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})

	// Several instances of "make run" racing must all succeed.
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = migrations.EnsureDatabase(ctx, u.String()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent EnsureDatabase: %v", err)
	}
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		t.Errorf("database %s was not created", name)
	}
}

func appliedVersions(t *testing.T, conn *pgx.Conn) []int64 {
	t.Helper()
	rows, err := conn.Query(t.Context(), "SELECT version_id FROM goose_db_version WHERE version_id > 0 AND is_applied ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return versions
}

func mustConnect(tb testing.TB, dbURL string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := conn.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return conn
}
