package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// History is the body of GET /v1/carts/:cartId/history.
type History struct {
	CartID  string         `json:"cartId"`
	Version int            `json:"version"`
	Events  []HistoryEvent `json:"events"`
}

// HistoryEvent is one event of the audit trail, as the event log stored it:
// Data has the shape of its type's SchemaVersion (the AsyncAPI document
// describes each), since an audit trail shows what was recorded.
type HistoryEvent struct {
	Version       int             `json:"version"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schemaVersion"`
	OccurredAt    time.Time       `json:"occurredAt"`
	Actor         string          `json:"actor"`
	Data          json.RawMessage `json:"data"`
	// Reason is why an item left the cart (cart.item-removed only), read
	// from Data as today's code understands it (upcast): "why did my item
	// vanish?".
	Reason string `json:"reason,omitempty"`
	// Skipped marks an event an operator skipped: the projector could not
	// apply it, so it changed nothing. Type and Data are as stored.
	Skipped bool `json:"skipped,omitempty"`
}

// GetHistory serves GET /v1/carts/:cartId/history: every event of the cart
// with its time, type, data and actor, in version order. Same ownership
// rules and ?minVersion as GetCart; the ETag is the cart's version.
func (h *Handler) GetHistory(c echo.Context) error {
	p, cartID, minVersion, err := cartRequest(c)
	if err != nil {
		return err
	}
	if minVersion > 0 {
		_, version, err := awaitVersion(h, c, minVersion, h.watchCart(cartID, minVersion), h.readCart(p, cartID))
		if err != nil {
			return err
		}
		if version == 0 {
			return errCartNotFound()
		}
	}
	d, entries, err := h.history(c.Request().Context(), p, cartID)
	if err != nil {
		return err
	}
	if notModified(c, d.version) {
		return c.NoContent(http.StatusNotModified)
	}
	body := History{CartID: cartID, Version: d.version, Events: make([]HistoryEvent, len(entries))}
	for i, e := range entries {
		ev := HistoryEvent{
			Version: e.Version, Type: e.Type, SchemaVersion: e.SchemaVersion, OccurredAt: e.OccurredAt,
			Actor: e.Actor, Data: e.Data, Skipped: e.Skipped,
		}
		// Decoded even when only removals need it: an entry this code
		// cannot read is an error here, not a surprise in the client — but
		// a skipped one is, by definition, one that could not be read.
		if !e.Skipped {
			r, err := e.Envelope(cartID).Recorded()
			if err != nil {
				return fmt.Errorf("httpapi: cart %s history: %w", cartID, err)
			}
			if removed, ok := r.Event.(cart.ItemRemoved); ok {
				ev.Reason = removed.Reason
			}
		}
		body.Events[i] = ev
	}
	return c.JSON(http.StatusOK, body)
}
