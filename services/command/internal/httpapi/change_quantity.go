package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/cart"
)

type changeQuantityRequest struct {
	ProductID string `json:"productId"`
	Quantity  int    `json:"quantity"`
}

// changeQuantity handles POST /v1/carts/:cartId/change-quantity
// {"productId", "quantity"}. Setting the quantity a line already has changes
// nothing and answers with the current version.
func (h *Handler) changeQuantity(c echo.Context) error {
	var req changeQuantityRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	return h.update(c, req, cart.ChangeQuantity{ProductID: req.ProductID, Quantity: req.Quantity})
}
