package httpapi

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/auth"
)

// GetCart serves GET /v1/carts/:cartId. Someone else's cart is answered
// exactly like a missing one, so ids cannot be probed; system callers may
// read any cart.
//
// ?minVersion=N waits (bounded) until the document has version N, the one
// a command returned: read your writes. ?at=<RFC 3339> serves the cart as
// it was at that time instead (see cartAt); with minVersion too, the wait
// comes first.
func (h *Handler) GetCart(c echo.Context) error {
	p, cartID, minVersion, err := cartRequest(c)
	if err != nil {
		return err
	}
	when, timeTravel, err := at(c)
	if err != nil {
		return err
	}
	d, version, err := awaitVersion(h, c, minVersion, h.watchCart(cartID, minVersion), h.readCart(p, cartID))
	if err != nil {
		return err
	}
	if version == 0 {
		return errCartNotFound()
	}
	if timeTravel {
		return h.cartAt(c, p, cartID, when)
	}
	return serve(c, d)
}

func (h *Handler) watchCart(cartID string, minVersion int) func() (<-chan struct{}, bool, func()) {
	return func() (<-chan struct{}, bool, func()) { return h.updates.WatchCart(cartID, minVersion) }
}

// readCart reads a cart's document for the caller; version 0 when it is
// missing or someone else's.
func (h *Handler) readCart(p auth.Principal, cartID string) reader[document] {
	return func(ctx context.Context) (document, int, error) {
		st, found, err := h.carts.Cart(ctx, cartID)
		if err != nil {
			return document{}, 0, unavailable(err)
		}
		if !found {
			return document{}, 0, nil
		}
		d, err := newDocument(st)
		if err != nil || !readable(p, d.owner) {
			return document{}, 0, err
		}
		return d, d.version, nil
	}
}
