package chaos_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/chaos"
	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/eventlog"
)

// TestOutOfOrderCommits holds a transaction that appended an event and its
// outbox row to one cart open while commands on other carts commit and are
// published past it, then commits it (and, in the next round, rolls it
// back). The relay must publish exactly what committed: the held event once
// it commits, in its cart's order, and the rolled-back one never.
func TestOutOfOrderCommits(t *testing.T) {
	t.Parallel()
	s := chaos.Start(t, bin, mode, chaos.Options{})
	ledger := chaos.NewLedger()
	client := newClient(s, ledger)
	sampler := s.StartSampler(t, ledger)
	ctx := context.Background()

	const customer = "held-customer"
	tok := s.Token(t, customer)
	send := func(cmd *chaos.Command) *chaos.Command {
		t.Helper()
		cmd.Customer = customer
		if c := client.Send(ctx, tok, cmd); c.Outcome != chaos.OK {
			t.Fatalf("command on the held cart: %s", c)
		}
		return cmd
	}
	held := send(&chaos.Command{Kind: "open"})
	version := send(&chaos.Command{Kind: "add-item", CartID: held.CartID, ProductID: "123", Quantity: 1}).Version

	load := s.StartLoad(t, client, loadConfig())
	rounds := chaos.Pick(mode, 1, 10)
	passed := chaos.Pick(mode, 15, 200) // later events published while one is held
	for round := range rounds {
		for _, commit := range []bool{true, false} {
			tx, err := s.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// A test that fails while holding the transaction must still
			// give its connection back (after Commit this does nothing).
			defer func() { _ = tx.Rollback(ctx) }()
			id, position := appendHeld(t, tx, held.CartID, customer, version)
			// Events that took a later position commit, and the relay
			// publishes them (and removes their outbox rows) past the
			// held one.
			var later int
			waitFor(t, 2*time.Minute, "later events published past the held one", func() bool {
				err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM events e WHERE e.position > $1
					AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.position = e.position)`, position).Scan(&later)
				if err != nil {
					t.Fatal(err)
				}
				return later >= passed
			})
			if commit {
				if err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				version++
			} else if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			ledger.Inject(id, commit)
			t.Logf("round %d: held event at position %d while %d later events committed; committed=%v", round+1, position, later, commit)
		}
		// The cart goes on after the held event, in order.
		version = send(&chaos.Command{Kind: "add-item", CartID: held.CartID, ProductID: "456", Quantity: 1}).Version
	}
	load.Stop()
	s.Check(t, ledger, chaos.CheckOptions{Sampler: sampler})
}

// appendHeld appends an item-added event to a cart inside tx exactly as the
// command service does — compare-and-set of the cart's head, the event,
// its outbox row — and returns the event id and its position.
func appendHeld(t *testing.T, tx pgx.Tx, cartID, customer string, version int) (string, int64) {
	t.Helper()
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7()).String()
	env, err := envelope.New(id, cartID, version+1,
		cart.ItemAdded{ProductID: "789", Name: "Milk frother", UnitPrice: 3499, Currency: "EUR", Quantity: 1},
		envelope.Metadata{Actor: customer, CorrelationID: "held-" + id}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	md, err := json.Marshal(env.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := tx.Exec(ctx, `UPDATE carts SET version = $2, updated_at = $3 WHERE cart_id = $1 AND version = $4`,
		cartID, version+1, env.OccurredAt, version)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("move cart %s to v%d: %v (%d rows)", cartID, version+1, err, tag.RowsAffected())
	}
	var position int64
	err = tx.QueryRow(ctx, `INSERT INTO events (event_id, stream_id, stream_type, version, type, schema_version, data, metadata, occurred_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING position`,
		env.EventID, env.StreamID, env.StreamType, env.Version, env.Type, env.SchemaVersion, string(env.Data), string(md), env.OccurredAt).Scan(&position)
	if err != nil {
		t.Fatal(err)
	}
	// Written by hand, as by no command instance: wake the relay as one
	// whose relay does not lead would.
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (position) VALUES ($1)`, position); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, eventlog.OutboxChannel); err != nil {
		t.Fatal(err)
	}
	return id, position
}
