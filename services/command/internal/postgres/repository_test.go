package postgres_test

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/services/command/internal/postgres"
)

var (
	alice = cart.Actor{ID: "alice"}
	bob   = cart.Actor{ID: "bob"}
	md    = envelope.Metadata{Actor: "alice", CorrelationID: "corr-1", CausationID: "req-1"}
)

// stepClock starts at a fixed instant and moves one millisecond per reading,
// so each write has its own, predictable time.
func stepClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Millisecond) }
}

func mustRepo(t *testing.T, opts ...postgres.Option) (*postgres.Repository, *pgxpool.Pool) {
	t.Helper()
	pool, _ := pgtest.MustPool(t)
	repo := postgres.New(pool, append([]postgres.Option{postgres.WithClock(stepClock())}, opts...)...)
	t.Cleanup(repo.Close)
	return repo, pool
}

func mustOpen(t *testing.T, repo *postgres.Repository, by cart.Actor) string {
	t.Helper()
	id, v, created, err := repo.Open(t.Context(), by, md)
	if err != nil || !created || v != 1 {
		t.Fatalf("Open(%s) = %q, v%d, created=%v, %v; want a new cart at v1", by.ID, id, v, created, err)
	}
	return id
}

// do runs one command through Update the way the HTTP handlers do.
func do(ctx context.Context, repo *postgres.Repository, id string, by cart.Actor, c cart.Command) (int, error) {
	return repo.Update(ctx, id, by, md, func(s cart.State) ([]cart.Event, error) { return cart.Decide(s, by, c) })
}

func mustDo(t *testing.T, repo *postgres.Repository, id string, by cart.Actor, c cart.Command) int {
	t.Helper()
	v, err := do(t.Context(), repo, id, by, c)
	if err != nil {
		t.Fatalf("%T on %s: %v", c, id, err)
	}
	return v
}

func mustProduct(t *testing.T, repo *postgres.Repository, id string) *cart.Product {
	t.Helper()
	p, err := repo.Product(t.Context(), id)
	if err != nil || p == nil {
		t.Fatalf("Product(%s) = %v, %v", id, p, err)
	}
	return p
}

func add(p *cart.Product, qty int) cart.AddItem {
	return cart.AddItem{ProductID: p.ID, Quantity: qty, Product: p}
}

// fullFold replays the whole stream, ignoring snapshots.
func fullFold(t *testing.T, pool *pgxpool.Pool, id string) (cart.State, []envelope.Envelope) {
	t.Helper()
	evs, err := eventlog.ReadStream(t.Context(), pool, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var s cart.State
	for _, e := range evs {
		r, err := e.Recorded()
		if err != nil {
			t.Fatal(err)
		}
		s = cart.Evolve(s, r)
	}
	return s, evs
}

func count(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	repo, pool := mustRepo(t)
	id := mustOpen(t, repo, alice)
	beans, mug := mustProduct(t, repo, "123"), mustProduct(t, repo, "456")

	mustDo(t, repo, id, alice, add(beans, 2))
	mustDo(t, repo, id, alice, add(mug, 1))
	mustDo(t, repo, id, alice, add(beans, 1))
	mustDo(t, repo, id, alice, cart.ChangeQuantity{ProductID: "456", Quantity: 4})
	if v := mustDo(t, repo, id, alice, cart.RemoveItem{ProductID: "123"}); v != 6 {
		t.Fatalf("version after 5 commands = %d, want 6", v)
	}

	got, err := repo.Load(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	want, evs := fullFold(t, pool, id)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Load = %+v\nwant the fold of the stream %+v", got, want)
	}
	if got.Version != 6 || got.CustomerID != "alice" || got.Status != cart.StatusOpen ||
		len(got.Lines) != 1 || got.Lines[0].ProductID != "456" || got.Lines[0].Quantity != 4 {
		t.Fatalf("state = %+v, want alice's open cart v6 with 4 mugs", got)
	}
	wantTypes := []string{cart.TypeOpened, cart.TypeItemAdded, cart.TypeItemAdded, cart.TypeItemAdded, cart.TypeQuantityChanged, cart.TypeItemRemoved}
	for i, e := range evs {
		if e.Version != i+1 || e.Type != wantTypes[i] || e.StreamID != id || e.StreamType != envelope.StreamTypeCart {
			t.Errorf("event %d = v%d %s of %s/%s; want v%d %s", i, e.Version, e.Type, e.StreamType, e.StreamID, i+1, wantTypes[i])
		}
		if e.Metadata != md {
			t.Errorf("event %d metadata = %+v, want %+v", i, e.Metadata, md)
		}
		if e.OccurredAt.IsZero() || (i > 0 && !e.OccurredAt.After(evs[i-1].OccurredAt)) {
			t.Errorf("event %d occurred at %v, want the write's clock reading", i, e.OccurredAt)
		}
	}

	var status string
	var version int
	if err := pool.QueryRow(t.Context(), `SELECT status, version FROM carts WHERE cart_id = $1`, id).Scan(&status, &version); err != nil {
		t.Fatal(err)
	}
	if status != "open" || version != 6 {
		t.Fatalf("carts row = %s v%d, want open v6", status, version)
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	repo, pool := mustRepo(t)
	id := mustOpen(t, repo, alice)

	t.Run("ExistingCart", func(t *testing.T) {
		again, v, created, err := repo.Open(t.Context(), alice, md)
		if err != nil || created || again != id || v != 1 {
			t.Fatalf("second Open = %q v%d created=%v %v; want %q v1 not created", again, v, created, err, id)
		}
	})
	t.Run("NewCartAfterCheckout", func(t *testing.T) {
		mustDo(t, repo, id, alice, add(mustProduct(t, repo, "789"), 1))
		mustDo(t, repo, id, alice, cart.Checkout{})
		next := mustOpen(t, repo, alice)
		if next == id {
			t.Fatal("Open after checkout returned the checked-out cart")
		}
		var status string
		if err := pool.QueryRow(t.Context(), `SELECT status FROM carts WHERE cart_id = $1`, id).Scan(&status); err != nil || status != "checked-out" {
			t.Fatalf("old cart status = %q, %v; want checked-out", status, err)
		}
		if _, err := do(t.Context(), repo, id, alice, add(mustProduct(t, repo, "123"), 1)); !errors.Is(err, cart.ErrCheckedOut) {
			t.Fatalf("add to checked-out cart: %v, want ErrCheckedOut", err)
		}
	})
	t.Run("ErrInvalidCustomer", func(t *testing.T) {
		before := count(t, pool, "events")
		if _, _, _, err := repo.Open(t.Context(), cart.Actor{}, md); !errors.Is(err, cart.ErrInvalidCustomer) {
			t.Fatalf("Open without actor: %v", err)
		}
		if n := count(t, pool, "events"); n != before {
			t.Fatalf("events %d → %d after a refused Open", before, n)
		}
	})
}

func TestUpdateNoOpWritesNothing(t *testing.T) {
	t.Parallel()
	repo, pool := mustRepo(t)
	id := mustOpen(t, repo, alice)
	mustDo(t, repo, id, alice, add(mustProduct(t, repo, "123"), 3))
	before := count(t, pool, "events")

	v, err := do(t.Context(), repo, id, alice, cart.ChangeQuantity{ProductID: "123", Quantity: 3})
	if err != nil || v != 2 {
		t.Fatalf("no-op change = v%d, %v; want v2 and no error", v, err)
	}
	if n, o := count(t, pool, "events"), count(t, pool, "outbox"); n != before || o != before {
		t.Fatalf("after a no-op: %d events, %d outbox rows; want %d of each", n, o, before)
	}
}

func TestUpdateRefusedWritesNothing(t *testing.T) {
	t.Parallel()
	repo, pool := mustRepo(t)
	id := mustOpen(t, repo, alice)
	before := count(t, pool, "events")

	for _, tc := range []struct {
		name string
		id   string
		by   cart.Actor
		cmd  cart.Command
		want error
	}{
		{"ErrProductUnavailable", id, alice, add(mustProduct(t, repo, "999"), 1), cart.ErrProductUnavailable},
		{"ErrUnknownProduct", id, alice, cart.AddItem{ProductID: "nope", Quantity: 1}, cart.ErrUnknownProduct},
		{"ErrInvalidQuantity", id, alice, add(mustProduct(t, repo, "123"), 100), cart.ErrInvalidQuantity},
		{"ErrEmpty", id, alice, cart.Checkout{}, cart.ErrEmpty},
		{"ErrItemNotInCart", id, alice, cart.RemoveItem{ProductID: "123"}, cart.ErrItemNotInCart},
		{"ErrNotFound/SomeoneElsesCart", id, bob, add(mustProduct(t, repo, "123"), 1), cart.ErrNotFound},
		{"ErrNotFound/NotAUUID", "not-a-uuid", alice, cart.Checkout{}, cart.ErrNotFound},
		{"ErrNotFound/BracedUUID", "{" + id + "}", alice, cart.Checkout{}, cart.ErrNotFound},
		{"ErrNotFound/UnknownCart", "0195a3c0-0000-7000-8000-000000000000", alice, cart.Checkout{}, cart.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := do(t.Context(), repo, tc.id, tc.by, tc.cmd); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if n, o := count(t, pool, "events"), count(t, pool, "outbox"); n != before || o != before {
		t.Fatalf("after refused commands: %d events, %d outbox rows; want %d of each", n, o, before)
	}
}

func TestProduct(t *testing.T) {
	t.Parallel()
	repo, _ := mustRepo(t)
	p := mustProduct(t, repo, "123")
	want := cart.Product{ID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Available: true}
	if *p != want {
		t.Fatalf("Product(123) = %+v, want %+v", *p, want)
	}
	if p, err := repo.Product(t.Context(), "no-such-product"); p != nil || err != nil {
		t.Fatalf("unknown product = %v, %v; want nil, nil", p, err)
	}
}

func TestSnapshots(t *testing.T) {
	t.Parallel()
	repo, pool := mustRepo(t, postgres.WithSnapshotEvery(3))
	id := mustOpen(t, repo, alice)
	beans := mustProduct(t, repo, "123")
	for range 9 {
		mustDo(t, repo, id, alice, add(beans, 1)) // v2..v10
	}

	snapshotVersion := func() int {
		t.Helper()
		var v int
		if err := pool.QueryRow(t.Context(), `SELECT version FROM snapshots WHERE stream_id = $1`, id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := snapshotVersion(); v != 9 {
		t.Fatalf("snapshot at v%d, want v9 (every 3 events, stream at v10)", v)
	}
	want, _ := fullFold(t, pool, id)
	got, err := repo.Load(t.Context(), id)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load from snapshot = %+v, %v\nwant the full fold %+v", got, err, want)
	}

	t.Run("NextMultiple", func(t *testing.T) {
		mustDo(t, repo, id, alice, add(beans, 1))
		mustDo(t, repo, id, alice, add(beans, 1))
		if v := snapshotVersion(); v != 12 {
			t.Fatalf("snapshot at v%d, want v12", v)
		}
	})
	t.Run("OtherSchemaVersionIgnored", func(t *testing.T) {
		// A snapshot of another shape (here: a lying one) must not be used.
		if _, err := pool.Exec(t.Context(),
			`UPDATE snapshots SET schema_version = 99, state = jsonb_set(state, '{lines}', '[]') WHERE stream_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		want, _ := fullFold(t, pool, id)
		got, err := repo.Load(t.Context(), id)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Load with a foreign snapshot = %+v, %v\nwant the full fold %+v", got, err, want)
		}
	})
	t.Run("UndecodableIgnored", func(t *testing.T) {
		if _, err := pool.Exec(t.Context(),
			`UPDATE snapshots SET schema_version = $2, state = '{"version": "x"}' WHERE stream_id = $1`, id, postgres.SnapshotSchemaVersion); err != nil {
			t.Fatal(err)
		}
		want, _ := fullFold(t, pool, id)
		got, err := repo.Load(t.Context(), id)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Load with a broken snapshot = %+v, %v\nwant the full fold %+v", got, err, want)
		}
	})
}

func isConflict(err error) bool {
	return errors.Is(err, postgres.ErrConcurrentModification)
}
