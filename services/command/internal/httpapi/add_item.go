package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/cart"
)

type addItemRequest struct {
	ProductID string `json:"productId"`
	Quantity  int    `json:"quantity"`
}

// addItem handles POST /v1/carts/:cartId/add-item {"productId", "quantity"}.
// The product is looked up each time the command is decided: the event keeps
// the name and price the customer saw, an unknown product (nil) is the
// domain's to refuse, and a decision made again after the catalog changed
// meets the changed product.
func (h *Handler) addItem(c echo.Context) error {
	var req addItemRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	ctx := c.Request().Context()
	return h.updateWith(c, req, func() (cart.Command, error) {
		cmd := cart.AddItem{ProductID: req.ProductID, Quantity: req.Quantity}
		// Only an id the domain accepts is looked up; Decide refuses the others.
		if cart.ValidProductID(req.ProductID) {
			p, err := h.carts.Product(ctx, req.ProductID)
			if err != nil {
				return nil, err
			}
			cmd.Product = p
		}
		return cmd, nil
	})
}
