package eventlog_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/pgtest"
)

func TestRead(t *testing.T) {
	ctx := context.Background()
	pool, _ := pgtest.MustPool(t)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	a, b := uuid.NewString(), uuid.NewString()
	var stored []envelope.Envelope
	store := func(cartID string, version int, e cart.Event) {
		t.Helper()
		env, err := envelope.New(uuid.NewString(), cartID, version, e, envelope.Metadata{Actor: "alice", CorrelationID: "c-1"}, at.Add(time.Duration(len(stored))*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		md, _ := json.Marshal(env.Metadata)
		err = pool.QueryRow(ctx, `INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING position`,
			env.EventID, env.StreamID, env.StreamType, env.Version, env.Type, env.SchemaVersion, string(env.Data), string(md), env.OccurredAt).Scan(&env.Position)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, env)
	}
	store(a, 1, cart.Opened{CustomerID: "alice"})
	store(b, 1, cart.Opened{CustomerID: "bob"})
	store(a, 2, cart.ItemAdded{ProductID: "123", Name: "Espresso", UnitPrice: 1899, Currency: "EUR", Quantity: 2})
	store(a, 3, cart.QuantityChanged{ProductID: "123", OldQuantity: 2, NewQuantity: 1})

	same := func(t *testing.T, got []envelope.Envelope, want ...envelope.Envelope) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("read %d events, want %d", len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.Position != w.Position || g.EventID != w.EventID || g.StreamID != w.StreamID || g.Version != w.Version ||
				g.Type != w.Type || g.SchemaVersion != w.SchemaVersion || g.Metadata != w.Metadata || !g.OccurredAt.Equal(w.OccurredAt) {
				t.Errorf("event %d:\n got %+v\nwant %+v", i, g, w)
			}
			if _, err := g.Recorded(); err != nil {
				t.Errorf("event %d does not decode: %v", i, err)
			}
		}
	}

	t.Run("ReadStream whole", func(t *testing.T) {
		got, err := eventlog.ReadStream(ctx, pool, a, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, stored[0], stored[2], stored[3])
	})
	t.Run("ReadStream range", func(t *testing.T) {
		got, err := eventlog.ReadStream(ctx, pool, a, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, stored[2])
	})
	t.Run("ReadStream unknown cart", func(t *testing.T) {
		got, err := eventlog.ReadStream(ctx, pool, uuid.NewString(), 0, 0)
		if err != nil || len(got) != 0 {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	t.Run("ReadAll pages in position order", func(t *testing.T) {
		first, err := eventlog.ReadAll(ctx, pool, 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		same(t, first, stored[:3]...)
		rest, err := eventlog.ReadAll(ctx, pool, first[len(first)-1].Position, 3)
		if err != nil {
			t.Fatal(err)
		}
		same(t, rest, stored[3])
	})
	t.Run("ReadPositions", func(t *testing.T) {
		got, err := eventlog.ReadPositions(ctx, pool, []int64{stored[3].Position, stored[1].Position})
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, stored[1], stored[3])
	})
}
