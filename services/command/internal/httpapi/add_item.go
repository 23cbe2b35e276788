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
// The catalog is read before the cart: the event keeps the name and price
// the customer saw, and an unknown product (nil) is the domain's to refuse.
func (h *Handler) addItem(c echo.Context) error {
	var req addItemRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	// Only an id the domain accepts is looked up; Decide refuses the others.
	var product *cart.Product
	if cart.ValidProductID(req.ProductID) {
		p, err := h.carts.Product(c.Request().Context(), req.ProductID)
		if err != nil {
			return err
		}
		product = p
	}
	return h.update(c, req, cart.AddItem{ProductID: req.ProductID, Quantity: req.Quantity, Product: product})
}
