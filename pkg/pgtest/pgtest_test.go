package pgtest_test

import (
	"context"
	"testing"

	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestMustDatabase_isolatedAndMigrated(t *testing.T) {
	ctx := t.Context()
	a, b := pgtest.MustDatabase(t), pgtest.MustDatabase(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
	connA, connB := mustConnect(t, a), mustConnect(t, b)

	for _, table := range []string{"events", "carts", "snapshots", "outbox", "products"} {
		var found *string
		if err := connA.QueryRow(ctx, "SELECT to_regclass($1)::text", table).Scan(&found); err != nil || found == nil {
			t.Errorf("table %s missing (err %v)", table, err)
		}
	}
	if _, err := connA.Exec(ctx, "INSERT INTO products (product_id, name, unit_price, currency) VALUES ('only-in-a', 'x', 1, 'EUR')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := connB.QueryRow(ctx, "SELECT count(*) FROM products WHERE product_id = 'only-in-a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a row written to one test database is visible in another")
	}
}

func TestMustDatabase_droppedAtCleanup(t *testing.T) {
	var dbURL string
	t.Run("inner", func(t *testing.T) { dbURL = pgtest.MustDatabase(t) })
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestMustPool(t *testing.T) {
	pool, _ := pgtest.MustPool(t)
	var name string
	if err := pool.QueryRow(t.Context(), "SELECT name FROM products WHERE product_id = '123'").Scan(&name); err != nil {
		t.Fatalf("seeded product 123: %v", err)
	}
	if name != "Espresso beans 1 kg" {
		t.Errorf("product 123 is %q", name)
	}
}

func TestMustEmptyDatabase(t *testing.T) {
	conn := mustConnect(t, pgtest.MustEmptyDatabase(t))
	var found *string
	if err := conn.QueryRow(t.Context(), "SELECT to_regclass('events')::text").Scan(&found); err != nil {
		t.Fatal(err)
	}
	if found != nil {
		t.Errorf("empty database has an events table")
	}
}

// BenchmarkMustDatabase measures creating one test database (the drops run
// after the timer stops).
func BenchmarkMustDatabase(b *testing.B) {
	pgtest.MustDatabase(b) // the first call may build the template
	for b.Loop() {
		pgtest.MustDatabase(b)
	}
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
