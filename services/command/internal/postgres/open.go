package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/problem"
)

// Open returns the acting customer's open cart, or opens a new one. created
// reports which. Two concurrent Opens for one customer return the same cart:
// the partial unique index carts_one_open_per_customer lets exactly one
// insert win, and the loser reads the winner's cart.
func (r *Repository) Open(ctx context.Context, by cart.Actor, md envelope.Metadata) (cartID string, version int, created bool, err error) {
	// Decide first: it refuses an actor without an id before any I/O.
	evs, err := cart.Decide(cart.State{}, by, cart.Open{})
	if err != nil {
		return "", 0, false, err
	}
	for attempt := 0; ; attempt++ {
		id, v, found, err := r.findOpen(ctx, by.ID)
		if err != nil || found {
			return id, v, false, err
		}
		u, err := uuid.NewV7()
		if err != nil {
			return "", 0, false, fmt.Errorf("postgres: open cart for %q: cart id: %w", by.ID, err)
		}
		s, err := r.write(ctx, headInsert, cart.State{CartID: u.String()}, by.ID, evs, md)
		if err == nil {
			return s.CartID, s.Version, true, nil
		}
		if !errors.Is(err, errOpenExists) {
			return "", 0, false, err
		}
		// Lost the race. The winner's cart is normally found on the next
		// read; it is not only if it was checked out in between.
		if attempt >= r.maxRetries {
			return "", 0, false, problem.New(problem.Conflict, "concurrent-modification",
				"the cart was changed by another request at the same time; retry")
		}
	}
}

// findOpen returns the customer's open cart and its head version.
func (r *Repository) findOpen(ctx context.Context, customerID string) (id string, version int, found bool, err error) {
	err = r.pool.QueryRow(ctx,
		`SELECT cart_id::text, version FROM carts WHERE customer_id = $1 AND status = 'open'`, customerID,
	).Scan(&id, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("postgres: find open cart of %q: %w", customerID, err)
	}
	return id, version, true, nil
}
