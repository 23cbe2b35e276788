// Package backlog fills the event store with an outbox backlog while no
// command service runs: carts that were opened, filled, changed and checked
// out, written as the command service writes them — the same rows in events
// (the domain's events, encoded by the envelope), outbox and carts — only in
// bulk. Starting a command service then measures how fast its relay drains
// the outbox, and the projector how fast it catches up.
package backlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
)

// EventsPerCart is the length of each cart's story (see story).
const EventsPerCart = 10

// cartsPerTx bounds one transaction: ten thousand events.
const cartsPerTx = 1000

// Seeded says what Seed wrote: the outbox rows are those with positions
// First … Last.
type Seeded struct {
	Events, Carts int
	First, Last   int64
}

// Seed writes at least events events (a whole number of carts of
// EventsPerCart each) with their outbox and carts rows, customers named
// <customerPrefix>-<n>. It must run while nothing else appends: the outbox
// rows are those of the events it inserted, found by position.
func Seed(ctx context.Context, pool *pgxpool.Pool, events int, customerPrefix string, now time.Time) (Seeded, error) {
	products, err := catalog(ctx, pool)
	if err != nil {
		return Seeded{}, err
	}
	carts := (events + EventsPerCart - 1) / EventsPerCart
	s := Seeded{Carts: carts, Events: carts * EventsPerCart}
	for from := 0; from < carts; from += cartsPerTx {
		first, last, err := seedChunk(ctx, pool, products, customerPrefix, from, min(from+cartsPerTx, carts), now)
		if err != nil {
			return Seeded{}, err
		}
		if s.First == 0 {
			s.First = first
		}
		s.Last = last
	}
	return s, nil
}

// catalog reads the products the stories add.
func catalog(ctx context.Context, pool *pgxpool.Pool) (map[string]*cart.Product, error) {
	rows, err := pool.Query(ctx, `SELECT product_id, name, unit_price, currency, available FROM products`)
	if err != nil {
		return nil, fmt.Errorf("backlog: catalog: %w", err)
	}
	products := map[string]*cart.Product{}
	for rows.Next() {
		var p cart.Product
		if err := rows.Scan(&p.ID, &p.Name, &p.UnitPrice, &p.Currency, &p.Available); err != nil {
			return nil, fmt.Errorf("backlog: catalog: %w", err)
		}
		products[p.ID] = &p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("backlog: catalog: %w", err)
	}
	return products, nil
}

// seedChunk writes carts [from, to) in one transaction and returns the
// positions of their outbox rows.
func seedChunk(ctx context.Context, pool *pgxpool.Pool, products map[string]*cart.Product, customerPrefix string,
	from, to int, now time.Time) (first, last int64, err error) {
	stories := make([][]envelope.Envelope, 0, to-from)
	heads := make([][]any, 0, to-from)
	for n := from; n < to; n++ {
		customer := fmt.Sprintf("%s-%d", customerPrefix, n)
		// Each cart's story happens a little later than the previous one's.
		at := now.Add(time.Duration(n-from) * time.Millisecond)
		evs, final, err := story(customer, products, at)
		if err != nil {
			return 0, 0, err
		}
		stories = append(stories, evs)
		heads = append(heads, []any{uuidOf(final.CartID), customer, string(final.Status), final.Version, final.OpenedAt, final.UpdatedAt})
	}
	// Version-major order: every cart's first event, then every second
	// one …, as if the carts had been filled at the same time, which is
	// how positions interleave under real load.
	rows := make([][]any, 0, len(stories)*EventsPerCart)
	for v := range EventsPerCart {
		for _, evs := range stories {
			e := evs[v]
			md := fmt.Sprintf(`{"actor":%q,"correlationId":%q,"causationId":%q}`, e.Metadata.Actor, e.Metadata.CorrelationID, e.Metadata.CausationID)
			rows = append(rows, []any{uuidOf(e.EventID), uuidOf(e.StreamID), e.StreamType, e.Version, e.Type, e.SchemaVersion,
				[]byte(e.Data), []byte(md), e.OccurredAt})
		}
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("backlog: begin: %w", err)
	}
	defer func() {
		if rerr := tx.Rollback(ctx); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) {
			err = errors.Join(err, fmt.Errorf("backlog: rollback: %w", rerr))
		}
	}()
	var before int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM events`).Scan(&before); err != nil {
		return 0, 0, fmt.Errorf("backlog: last position: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"carts"},
		[]string{"cart_id", "customer_id", "status", "version", "created_at", "updated_at"}, pgx.CopyFromRows(heads)); err != nil {
		return 0, 0, fmt.Errorf("backlog: carts: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"},
		[]string{"event_id", "stream_id", "stream_type", "version", "type", "schema_version", "data", "metadata", "occurred_at"},
		pgx.CopyFromRows(rows)); err != nil {
		return 0, 0, fmt.Errorf("backlog: events: %w", err)
	}
	if err := tx.QueryRow(ctx, `WITH o AS (
	INSERT INTO outbox (position) SELECT position FROM events WHERE position > $1 ORDER BY position RETURNING position
) SELECT min(position), max(position) FROM o`, before).Scan(&first, &last); err != nil {
		return 0, 0, fmt.Errorf("backlog: outbox: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("backlog: commit: %w", err)
	}
	return first, last, nil
}

// story is one customer's cart from open to checkout, decided and folded by
// the domain as the command service would: EventsPerCart events, the last
// one its checkout. It returns the events and the final state.
func story(customer string, products map[string]*cart.Product, at time.Time) ([]envelope.Envelope, cart.State, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, cart.State{}, fmt.Errorf("backlog: cart id: %w", err)
	}
	add := func(p string, q int) cart.Command {
		return cart.AddItem{ProductID: p, Quantity: q, Product: products[p]}
	}
	commands := []cart.Command{
		cart.Open{}, add("123", 2), add("456", 1), add("789", 1),
		cart.ChangeQuantity{ProductID: "123", Quantity: 3}, add("101", 1),
		cart.RemoveItem{ProductID: "456"}, cart.ChangeQuantity{ProductID: "789", Quantity: 2},
		add("202", 1), cart.Checkout{},
	}
	by := cart.Actor{ID: customer}
	var (
		s   cart.State
		out = make([]envelope.Envelope, 0, EventsPerCart)
	)
	for i, c := range commands {
		evs, err := cart.Decide(s, by, c)
		if err != nil {
			return nil, cart.State{}, fmt.Errorf("backlog: %s's cart, command %d: %w", customer, i, err)
		}
		when := at.Add(time.Duration(i) * time.Second)
		request := uuid.NewString()
		md := envelope.Metadata{Actor: customer, CorrelationID: request, CausationID: request}
		for _, ev := range evs {
			eventID, err := uuid.NewV7()
			if err != nil {
				return nil, cart.State{}, fmt.Errorf("backlog: event id: %w", err)
			}
			version := s.Version + 1
			env, err := envelope.New(eventID.String(), id.String(), version, ev, md, when)
			if err != nil {
				return nil, cart.State{}, fmt.Errorf("backlog: %w", err)
			}
			out = append(out, env)
			s = cart.Evolve(s, cart.Recorded{CartID: id.String(), Version: version, OccurredAt: env.OccurredAt, Event: ev})
		}
	}
	if len(out) != EventsPerCart {
		return nil, cart.State{}, fmt.Errorf("backlog: a story has %d events, want %d", len(out), EventsPerCart)
	}
	return out, s, nil
}

func uuidOf(s string) pgtype.UUID {
	return pgtype.UUID{Bytes: uuid.MustParse(s), Valid: true}
}
