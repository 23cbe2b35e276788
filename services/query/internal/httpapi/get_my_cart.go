package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/problem"
)

// GetMyCart serves GET /v1/customers/me/cart: the caller's open cart. The
// customer → open cart index is written apart from the documents and can lag
// for a moment, so a document that is missing, closed or not the caller's is
// answered as "no open cart" rather than served.
func (h *Handler) GetMyCart(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	none := problem.New(problem.NotFound, CodeNoOpenCart, "the customer has no open cart")
	raw, found, err := h.carts.OpenCart(c.Request().Context(), p.Subject)
	if err != nil {
		return unavailable(err)
	}
	if !found {
		return none
	}
	d, err := decode(raw)
	if err != nil {
		return err
	}
	if d.Status != string(cart.StatusOpen) || d.CustomerID != p.Subject {
		return none
	}
	return serve(c, d)
}
