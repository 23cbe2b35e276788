package relay

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// BenchmarkDrain measures how fast a running relay empties an outbox that
// received 10,000 (and 100,000) events in one commit, for carts with few or
// many events.
//
//	go test -run '^$' -bench Drain -benchtime 3x ./relay/
func BenchmarkDrain(b *testing.B) {
	for _, c := range []struct{ total, perCart int }{{10_000, 1}, {10_000, 10}, {10_000, 100}, {100_000, 10}} {
		total, perCart := c.total, c.perCart
		b.Run(fmt.Sprintf("%dcarts_x%d", total/perCart, perCart), func(b *testing.B) {
			f := newFixture(b)
			f.opts.PollInterval = time.Minute
			r := New(f.pool, f.nats.JS, f.opts, nil)
			start(b, r)
			eventually(b, 10*time.Second, "leader", r.IsLeader)

			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				before := r.Published()
				commit := insertBulk(b, f, total/perCart, perCart)
				b.StartTimer()
				began := time.Now()
				commit()
				for r.Published() < before+uint64(total) {
					time.Sleep(time.Millisecond)
				}
				elapsed += time.Since(began)
			}
			b.ReportMetric(float64(b.N*total)/elapsed.Seconds(), "events/s")
		})
	}
}

// insertBulk inserts carts×perCart item-added events and their outbox rows in
// one transaction, carts interleaved, and returns its commit.
func insertBulk(b *testing.B, f fixture, carts, perCart int) (commit func()) {
	b.Helper()
	ctx := context.Background()
	typ, sv, _, err := cart.Encode(cart.ItemAdded{})
	if err != nil {
		b.Fatal(err)
	}
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	_, err = tx.Exec(ctx, `
		WITH ins AS (
			INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at)
			SELECT gen_random_uuid(), md5($1 || c::text)::uuid, 'cart', v, $4, $5,
			       jsonb_build_object('productId', '123', 'name', 'Espresso beans 1 kg', 'unitPrice', 1899,
			                          'currency', 'EUR', 'quantity', v),
			       jsonb_build_object('actor', 'customer', 'correlationId', gen_random_uuid()::text),
			       now()
			FROM generate_series(1, $2::int) c, generate_series(1, $3::int) v
			ORDER BY v, c
			RETURNING position)
		INSERT INTO outbox (position) SELECT position FROM ins`,
		uuid.NewString(), carts, perCart, typ, sv)
	if err != nil {
		b.Fatalf("bulk insert: %v", err)
	}
	return func() {
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
