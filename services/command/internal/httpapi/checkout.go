package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// checkout handles POST /v1/carts/:cartId/checkout; the body is empty or {}.
func (h *Handler) checkout(c echo.Context) error {
	var req struct{}
	if err := decode(c, &req, true); err != nil {
		return err
	}
	return h.update(c, req, cart.Checkout{})
}
