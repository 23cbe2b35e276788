package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/problem"
)

// GetCart serves GET /v1/carts/:cartId. Someone else's cart is answered
// exactly like a missing one, so ids cannot be probed; system callers may
// read any cart.
func (h *Handler) GetCart(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	notFound := problem.New(problem.NotFound, CodeCartNotFound, "cart not found")
	cartID := c.Param("cartId")
	if !validCartID(cartID) {
		return notFound
	}
	raw, found, err := h.carts.Cart(c.Request().Context(), cartID)
	if err != nil {
		return unavailable(err)
	}
	if !found {
		return notFound
	}
	d, err := decode(raw)
	if err != nil {
		return err
	}
	if d.CustomerID != p.Subject && !p.IsSystem() {
		return notFound
	}
	return serve(c, d)
}
