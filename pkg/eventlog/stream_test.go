package eventlog_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/pgtest"
)

func TestStreamAfter(t *testing.T) {
	pool, _ := pgtest.MustPool(t)
	id, other := uuid.NewString(), uuid.NewString()
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for _, e := range []struct {
		cartID  string
		version int
		event   cart.Event
	}{
		{id, 1, cart.Opened{CustomerID: "alice"}},
		{other, 1, cart.Opened{CustomerID: "bob"}},
		{id, 2, cart.ItemAdded{ProductID: "123", Name: "Espresso", UnitPrice: 1899, Currency: "EUR", Quantity: 2}},
		{id, 3, cart.CheckedOut{}},
	} {
		env, err := envelope.New(uuid.NewString(), e.cartID, e.version, e.event, envelope.Metadata{Actor: "alice"}, at)
		if err != nil {
			t.Fatal(err)
		}
		md, _ := json.Marshal(env.Metadata)
		if _, err := pool.Exec(t.Context(), `INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			env.EventID, env.StreamID, env.StreamType, env.Version, env.Type, env.SchemaVersion, string(env.Data), string(md), env.OccurredAt); err != nil {
			t.Fatal(err)
		}
	}

	// Queued in a batch with another statement, as the command's load does.
	var evs []envelope.Envelope
	b := &pgx.Batch{}
	b.Queue(`SELECT 1`)
	b.Queue(eventlog.StreamAfter("$2"), id, 1).Query(func(rows pgx.Rows) error {
		var err error
		evs, err = eventlog.Collect(rows)
		return err
	})
	if err := pool.SendBatch(t.Context(), b).Close(); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].StreamID != id || evs[0].Version != 2 || evs[1].Version != 3 || !evs[1].OccurredAt.Equal(at) {
		t.Fatalf("events after version 1 = %+v, want versions 2 and 3 of %s", evs, id)
	}
}
