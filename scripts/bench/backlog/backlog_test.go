package backlog_test

import (
	"maps"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/eventlog"
	"github.com/cart-cqrs/cart/pkg/pgtest"
	"github.com/cart-cqrs/cart/scripts/bench/backlog"
)

// TestSeed: the backlog is what the command service would have written for
// checked-out carts: events that decode and fold to the carts rows, one
// outbox row per event, at the positions Seed reports.
func TestSeed(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.MustPool(t)
	ctx := t.Context()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	s, err := backlog.Seed(ctx, pool, 25, "backlog", now)
	if err != nil {
		t.Fatal(err)
	}
	if s.Carts != 3 || s.Events != 30 || s.Last-s.First+1 != 30 {
		t.Fatalf("Seed = %+v, want 3 carts, 30 events at 30 consecutive positions", s)
	}
	var events, outbox, inRange int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM outbox),
		(SELECT count(*) FROM outbox WHERE position BETWEEN $1 AND $2)`, s.First, s.Last).Scan(&events, &outbox, &inRange); err != nil {
		t.Fatal(err)
	}
	if events != 30 || outbox != 30 || inRange != 30 {
		t.Fatalf("%d events, %d outbox rows, %d of them in [%d, %d]; want 30 each", events, outbox, inRange, s.First, s.Last)
	}

	rows, err := pool.Query(ctx, `SELECT cart_id::text, customer_id, status, version FROM carts ORDER BY customer_id`)
	if err != nil {
		t.Fatal(err)
	}
	type head struct {
		id, customer, status string
		version              int
	}
	var heads []head
	for rows.Next() {
		var h head
		if err := rows.Scan(&h.id, &h.customer, &h.status, &h.version); err != nil {
			t.Fatal(err)
		}
		heads = append(heads, h)
	}
	if err := rows.Err(); err != nil || len(heads) != 3 {
		t.Fatalf("%d carts rows (%v), want 3", len(heads), err)
	}
	wantLines := map[string]int{"123": 3, "789": 2, "101": 1, "202": 1}
	for i, h := range heads {
		if want := []string{"backlog-0", "backlog-1", "backlog-2"}[i]; h.customer != want || h.status != "checked-out" || h.version != 10 {
			t.Errorf("carts row %+v, want %s checked-out at version 10", h, want)
		}
		evs, err := eventlog.ReadStream(ctx, pool, h.id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var st cart.State
		for _, e := range evs {
			rec, err := e.Recorded()
			if err != nil {
				t.Fatal(err)
			}
			if e.Metadata.Actor != h.customer || e.Metadata.CorrelationID == "" {
				t.Errorf("event %s metadata %+v", e.EventID, e.Metadata)
			}
			st = cart.Evolve(st, rec)
		}
		lines := map[string]int{}
		for _, l := range st.Lines {
			lines[l.ProductID] = l.Quantity
		}
		if st.Status != cart.StatusCheckedOut || st.Version != 10 || st.CustomerID != h.customer || !maps.Equal(lines, wantLines) {
			t.Errorf("cart %s folds to %s v%d of %s with %v; want checked-out v10 of %s with %v",
				h.id, st.Status, st.Version, st.CustomerID, lines, h.customer, wantLines)
		}
	}
}
