package readmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// HistoryEntry is one event of a cart's history list, kept as the event log
// stored it: its type, schema version and data are not upcast, so an old
// entry is read with today's cart.Decode like any stored event, and the
// query service folds the entries with the domain's own fold for time
// travel. The projector appends the entries in the same Lua call that writes
// the cart's document, so the list always holds versions 1..the document's.
type HistoryEntry struct {
	Version       int             `json:"version"`
	EventID       string          `json:"eventId"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schemaVersion"`
	Data          json.RawMessage `json:"data"`
	Actor         string          `json:"actor,omitempty"`
	CorrelationID string          `json:"correlationId,omitempty"`
	CausationID   string          `json:"causationId,omitempty"`
	OccurredAt    time.Time       `json:"occurredAt"`
	// Skipped marks an event an operator chose to skip because the
	// projector could not apply it (a poison event): its version counts,
	// its effect is not in the document, and a fold passes over it.
	Skipped bool `json:"skipped,omitempty"`
}

// NewHistoryEntry keeps what the history needs of a stored event. The trace
// context is left out: it describes the request that wrote the event, not
// the cart.
func NewHistoryEntry(e envelope.Envelope) HistoryEntry {
	return HistoryEntry{
		Version: e.Version, EventID: e.EventID, Type: e.Type, SchemaVersion: e.SchemaVersion, Data: e.Data,
		Actor: e.Metadata.Actor, CorrelationID: e.Metadata.CorrelationID, CausationID: e.Metadata.CausationID,
		OccurredAt: e.OccurredAt,
	}
}

// Envelope turns the entry back into the stored event of cart cartID, so
// that (Envelope).Recorded decodes (and upcasts) it for cart.Fold.
func (h HistoryEntry) Envelope(cartID string) envelope.Envelope {
	return envelope.Envelope{
		EventID: h.EventID, StreamID: cartID, StreamType: envelope.StreamTypeCart, Version: h.Version,
		Type: h.Type, SchemaVersion: h.SchemaVersion, Data: h.Data,
		Metadata:   envelope.Metadata{Actor: h.Actor, CorrelationID: h.CorrelationID, CausationID: h.CausationID},
		OccurredAt: h.OccurredAt,
	}
}

// Update is what the projector publishes on Keys.Updates after each write
// that changed a cart's document: a reader waiting for a version (read your
// writes) is woken by it instead of polling.
type Update struct {
	CartID  string
	Version int
	// CustomerID is the cart's owner, so that a request waiting for "my
	// cart" is woken by a cart whose id it does not know yet. Empty when
	// the cart has no customer.
	CustomerID string
}

// String is the message payload: "<cartId> <version> <customerId>". The
// customer id goes last because it is the only field that may hold spaces.
func (u Update) String() string {
	return u.CartID + " " + strconv.Itoa(u.Version) + " " + u.CustomerID
}

// ParseUpdate reads a payload written by Update.String (or by the
// projector's script, which writes the same format). The customer id is
// optional, so "<cartId> <version>" is an update too.
func ParseUpdate(payload string) (Update, error) {
	fields := strings.SplitN(payload, " ", 3)
	if len(fields) < 2 || fields[0] == "" {
		return Update{}, fmt.Errorf("readmodel: update %q: %w", payload, errMalformedUpdate)
	}
	v, err := strconv.Atoi(fields[1])
	if err != nil || v < 1 {
		return Update{}, fmt.Errorf("readmodel: update %q: %w", payload, errMalformedUpdate)
	}
	u := Update{CartID: fields[0], Version: v}
	if len(fields) == 3 {
		u.CustomerID = fields[2]
	}
	return u, nil
}

var errMalformedUpdate = errors.New(`not "<cartId> <version> [<customerId>]"`)
