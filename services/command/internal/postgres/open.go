package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
)

// Open returns the acting customer's open cart, or opens a new one. created
// reports which. Two concurrent Opens for one customer return the same cart:
// the partial unique index carts_one_open_per_customer lets exactly one
// insert win, and the loser reads the winner's cart.
func (r *Repository) Open(ctx context.Context, by cart.Actor, md envelope.Metadata) (cartID string, version int, created bool, err error) {
	resp, created, err := r.open(ctx, nil, by, md)
	return resp.CartID, resp.Version, created, err
}

// OpenIdempotent is Open under an idempotency key, with the semantics of
// UpdateIdempotent: finding the open cart is a no-op whose response is
// stored too, so a retry answers with the cart the first request got, even
// if it has been checked out since.
func (r *Repository) OpenIdempotent(ctx context.Context, req idempotency.Request, by cart.Actor, md envelope.Metadata) (idempotency.Response, error) {
	resp, _, err := r.open(ctx, &req, by, md)
	return resp, err
}

func (r *Repository) open(ctx context.Context, req *idempotency.Request, by cart.Actor, md envelope.Metadata) (_ idempotency.Response, created bool, _ error) {
	// Decide first: it refuses an actor without an id before any I/O.
	evs, err := cart.Decide(cart.State{}, by, cart.Open{})
	if err != nil {
		return idempotency.Response{}, false, err
	}
	checkKey := false
	for attempt, keyRaces := 0, 0; ; {
		resp, created, err := r.openOnce(ctx, req, by, md, evs, checkKey)
		switch {
		case err == nil:
			return resp, created, nil
		case errors.Is(err, errKeyTaken) && keyRaces < maxKeyRaces:
			keyRaces++ // the key's stored response answers
			checkKey = true
			continue
		case !errors.Is(err, errOpenExists):
			return idempotency.Response{}, false, err
		}
		// Lost the race. The winner's cart is normally found on the next
		// read; it is not only if it was checked out in between.
		if attempt >= r.maxRetries {
			return idempotency.Response{}, false, ErrConcurrentModification
		}
		attempt++
	}
}

// openOnce is one attempt of open: find the customer's open cart, or insert
// a new one with the Opened events evs. checkKey makes it answer from the
// idempotency key's stored response when there is one (see
// UpdateIdempotent).
func (r *Repository) openOnce(ctx context.Context, req *idempotency.Request, by cart.Actor, md envelope.Metadata,
	evs []cart.Event, checkKey bool) (_ idempotency.Response, created bool, _ error) {
	if checkKey {
		if resp, ok, err := r.replay(ctx, req); err != nil || ok {
			return resp, false, err
		}
	}
	id, v, found, err := r.findOpen(ctx, by.ID)
	if err != nil {
		return idempotency.Response{}, false, err
	}
	if !found {
		u, err := uuid.NewV7()
		if err != nil {
			return idempotency.Response{}, false, fmt.Errorf("postgres: open cart for %q: cart id: %w", by.ID, err)
		}
		id, v = u.String(), len(evs)
	}
	key, err := keyFor(req, id, v, !found)
	if err != nil {
		return idempotency.Response{}, false, err
	}
	if found {
		err = r.storeKey(ctx, key)
	} else {
		var s cart.State
		if s, err = r.write(ctx, headInsert, cart.State{CartID: id}, by.ID, evs, md, key); err == nil {
			r.states.put(s)
		}
	}
	if err != nil {
		return idempotency.Response{}, false, err
	}
	return key.response(id, v), !found, nil
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
