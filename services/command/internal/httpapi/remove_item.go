package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/cart"
)

type removeItemRequest struct {
	ProductID string `json:"productId"`
	// Reason is "customer" (the default) or, for system callers,
	// "product-unavailable".
	Reason string `json:"reason"`
}

// removeItem handles POST /v1/carts/:cartId/remove-item {"productId", "reason"?}.
func (h *Handler) removeItem(c echo.Context) error {
	var req removeItemRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	return h.update(c, req, cart.RemoveItem{ProductID: req.ProductID, Reason: req.Reason})
}
