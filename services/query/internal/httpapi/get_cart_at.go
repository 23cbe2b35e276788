package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/auth"
	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/problem"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// cartAt serves GET /v1/carts/:cartId?at=<RFC 3339>: the cart as it was at
// that time, in the same document shape as today's. It replays the cart's
// history with the domain's own fold (cart.Fold, the projector's too), so a
// past cart is computed exactly as the current one was. The ETag is the
// version it was at then.
func (h *Handler) cartAt(c echo.Context, p auth.Principal, cartID string, when time.Time) error {
	_, entries, err := h.history(c.Request().Context(), p, cartID)
	if err != nil {
		return err
	}
	recs, err := recordedUpTo(cartID, entries, when)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return problem.New(problem.NotFound, CodeCartNotFoundAt,
			"the cart did not exist yet at "+when.Format(time.RFC3339Nano))
	}
	doc := readmodel.FromState(cart.Fold(cart.State{}, recs...))
	if notModified(c, doc.Version) {
		return c.NoContent(http.StatusNotModified)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("httpapi: encode cart %s at %s: %w", cartID, when, err)
	}
	return c.JSONBlob(http.StatusOK, raw)
}

// recordedUpTo decodes (and upcasts) the events that had happened at when:
// the longest run of the history whose events all occurred at or before it.
// A run, not a filter: folding a later version without an earlier one
// would be a cart that never existed, should clocks ever disagree.
func recordedUpTo(cartID string, entries []readmodel.HistoryEntry, when time.Time) ([]cart.Recorded, error) {
	var recs []cart.Recorded
	for _, e := range entries {
		if e.OccurredAt.After(when) {
			break
		}
		if e.Skipped {
			// An operator skipped it: the version passes, nothing changes
			// (as the projector folds it).
			recs = append(recs, cart.Recorded{CartID: cartID, Version: e.Version, OccurredAt: e.OccurredAt})
			continue
		}
		r, err := e.Envelope(cartID).Recorded()
		if err != nil {
			return nil, fmt.Errorf("httpapi: cart %s history: %w", cartID, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// history reads a cart's document and history for the caller: someone
// else's cart is not found, and a history that does not hold exactly the
// versions 1..the document's (it predates histories, or was lost, and the
// projector has not rebuilt it yet) is unavailable rather than wrong.
func (h *Handler) history(ctx context.Context, p auth.Principal, cartID string) (document, []readmodel.HistoryEntry, error) {
	st, entries, found, err := h.carts.History(ctx, cartID)
	if err != nil {
		return document{}, nil, unavailable(err)
	}
	if !found {
		return document{}, nil, errCartNotFound()
	}
	d, err := newDocument(st)
	if err != nil {
		return document{}, nil, err
	}
	if !readable(p, d.owner) {
		return document{}, nil, errCartNotFound()
	}
	if len(entries) != d.version {
		return document{}, nil, unavailable(fmt.Errorf("httpapi: cart %s: %d history entries for version %d", cartID, len(entries), d.version))
	}
	for i, e := range entries {
		if e.Version != i+1 {
			return document{}, nil, unavailable(fmt.Errorf("httpapi: cart %s: history entry %d has version %d", cartID, i, e.Version))
		}
	}
	return d, entries, nil
}
