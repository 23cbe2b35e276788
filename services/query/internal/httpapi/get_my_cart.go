package httpapi

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/problem"
)

// GetMyCart serves GET /v1/customers/me/cart: the caller's open cart. The
// customer → open cart index is written apart from the documents and can lag
// for a moment, so a document that is missing, closed or not the caller's is
// answered as "no open cart" rather than served.
//
// ?minVersion=N waits (bounded) until the open cart has version N. The
// version is the open cart's: right after POST /v1/carts opened a cart, the
// read model may not show any open cart yet, and the request waits for one.
// To see the effect of a checkout, read the checked-out cart by its id.
func (h *Handler) GetMyCart(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	minVersion, err := minVersionParam(c)
	if err != nil {
		return err
	}
	d, version, err := awaitVersion(h, c, minVersion,
		func() (<-chan struct{}, bool, func()) { return h.updates.WatchCustomer(p.Subject, minVersion) },
		func(ctx context.Context) (document, int, error) {
			st, found, err := h.carts.OpenCart(ctx, p.Subject)
			if err != nil {
				return document{}, 0, unavailable(err)
			}
			if !found || (st.Owner != "" && st.Owner != p.Subject) {
				return document{}, 0, nil
			}
			// The status is not stored beside the document: it is read
			// from the document's head.
			d, err := newDocument(st)
			if err == nil {
				d, err = d.peek()
			}
			if err != nil || d.status != string(cart.StatusOpen) || d.owner != p.Subject {
				return document{}, 0, err
			}
			return d, d.version, nil
		})
	if err != nil {
		return err
	}
	if version == 0 {
		return problem.New(problem.NotFound, CodeNoOpenCart, "the customer has no open cart")
	}
	return serve(c, d)
}
