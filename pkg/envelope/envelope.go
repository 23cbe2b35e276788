// Package envelope is the event contract between the services: an event as it
// is stored in PostgreSQL (its stream, version, schema version and metadata),
// its CloudEvents 1.0 encoding, and the NATS subject it is published on.
// The relay writes it and the projector and other teams' services read it.
package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// StreamTypeCart is the stream type of every cart stream.
const StreamTypeCart = "cart"

// Metadata travels with every event: who caused it, and how it relates to the
// request and the trace that produced it.
type Metadata struct {
	Actor         string `json:"actor,omitempty"`
	CorrelationID string `json:"correlationId,omitempty"`
	CausationID   string `json:"causationId,omitempty"`
	TraceParent   string `json:"traceparent,omitempty"`
	TraceState    string `json:"tracestate,omitempty"`
}

// Envelope is one stored event.
type Envelope struct {
	// Position is the event's place in the global log; 0 when unknown (an
	// envelope read from NATS does not carry it).
	Position      int64
	EventID       string
	StreamID      string
	StreamType    string
	Version       int
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
	OccurredAt    time.Time
}

// New encodes a domain event into an envelope for a cart stream.
func New(eventID, cartID string, version int, e cart.Event, md Metadata, at time.Time) (Envelope, error) {
	typ, sv, data, err := cart.Encode(e)
	if err != nil {
		return Envelope{}, fmt.Errorf("envelope: %w", err)
	}
	return Envelope{
		EventID: eventID, StreamID: cartID, StreamType: StreamTypeCart, Version: version,
		Type: typ, SchemaVersion: sv, Data: data, Metadata: md, OccurredAt: at.UTC(),
	}, nil
}

// Recorded decodes (and upcasts) the event for the domain's fold.
func (e Envelope) Recorded() (cart.Recorded, error) {
	ev, err := cart.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return cart.Recorded{}, fmt.Errorf("envelope: event %s (cart %s v%d): %w", e.EventID, e.StreamID, e.Version, err)
	}
	return cart.Recorded{CartID: e.StreamID, Version: e.Version, OccurredAt: e.OccurredAt, Event: ev}, nil
}

// Subject is the NATS subject of an event: <prefix>.<cartId>.<event-name>, e.g.
// cart.events.0193….item-added, so that a subscriber can take one cart
// (cart.events.<cartId>.>) or one event type (cart.events.*.item-added).
func Subject(prefix, cartID, eventType string) string {
	return prefix + "." + cartID + "." + EventName(eventType)
}

// EventName is an event type without its "cart." namespace.
func EventName(eventType string) string {
	return strings.TrimPrefix(eventType, StreamTypeCart+".")
}

// Clone returns a copy of e that shares no memory with it: for an envelope
// read into a buffer that is used again.
func (e Envelope) Clone() Envelope {
	e.EventID, e.StreamID, e.StreamType, e.Type = strings.Clone(e.EventID), strings.Clone(e.StreamID), strings.Clone(e.StreamType), strings.Clone(e.Type)
	e.Data = bytes.Clone(e.Data)
	m := &e.Metadata
	m.Actor, m.CorrelationID, m.CausationID = strings.Clone(m.Actor), strings.Clone(m.CorrelationID), strings.Clone(m.CausationID)
	m.TraceParent, m.TraceState = strings.Clone(m.TraceParent), strings.Clone(m.TraceState)
	return e
}
