package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
)

// parkedEntry is a parked event as the list keeps it: the event as stored
// (all of it, to be applied later) and why it waits.
type parkedEntry struct {
	Version       int             `json:"version"`
	EventID       string          `json:"eventId"`
	Position      int64           `json:"position,omitempty"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schemaVersion"`
	Data          json.RawMessage `json:"data,omitempty"`
	// RawData holds data that is not JSON (base64), which a poison event
	// may carry.
	RawData       []byte            `json:"rawData,omitempty"`
	Metadata      envelope.Metadata `json:"metadata"`
	OccurredAt    time.Time         `json:"occurredAt"`
	Error         string            `json:"error"`
	Attempts      int               `json:"attempts"`
	FirstParkedAt time.Time         `json:"firstParkedAt"`
	LastAttemptAt time.Time         `json:"lastAttemptAt"`
}

func encodeParked(p documents.Parked) ([]byte, error) {
	e := p.Event
	pe := parkedEntry{
		Version: e.Version, EventID: e.EventID, Position: e.Position, Type: e.Type, SchemaVersion: e.SchemaVersion,
		Metadata: e.Metadata, OccurredAt: e.OccurredAt,
		Error: p.Error, Attempts: p.Attempts, FirstParkedAt: p.FirstParkedAt, LastAttemptAt: p.LastAttemptAt,
	}
	if json.Valid(e.Data) {
		pe.Data = e.Data
	} else {
		pe.RawData = e.Data
	}
	b, err := json.Marshal(pe)
	if err != nil {
		return nil, fmt.Errorf("redis: encode parked event %s v%d: %w", e.StreamID, e.Version, err)
	}
	return b, nil
}

func decodeParked(cartID, raw string) (documents.Parked, error) {
	var pe parkedEntry
	if err := json.Unmarshal([]byte(raw), &pe); err != nil {
		return documents.Parked{}, fmt.Errorf("parked event: %w", err)
	}
	data := pe.Data
	if pe.RawData != nil {
		data = pe.RawData
	}
	return documents.Parked{
		Event: envelope.Envelope{
			Position: pe.Position, EventID: pe.EventID, StreamID: cartID, StreamType: envelope.StreamTypeCart,
			Version: pe.Version, Type: pe.Type, SchemaVersion: pe.SchemaVersion, Data: data,
			Metadata: pe.Metadata, OccurredAt: pe.OccurredAt,
		},
		Error: pe.Error, Attempts: pe.Attempts, FirstParkedAt: pe.FirstParkedAt, LastAttemptAt: pe.LastAttemptAt,
	}, nil
}

// ParkedCarts lists the carts with parked events.
func (s *Store) ParkedCarts(ctx context.Context) ([]string, error) {
	ids, err := s.client.SMembers(ctx, s.parkedCartsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: carts with parked events: %w", err)
	}
	slices.Sort(ids)
	return ids, nil
}

// ParkedEvents counts the parked events of every cart.
func (s *Store) ParkedEvents(ctx context.Context) (int, error) {
	v, err := s.client.Get(ctx, s.parkedCountKey()).Result()
	switch {
	case errors.Is(err, goredis.Nil):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("redis: count parked events: %w", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("redis: parked events count %q: %w", v, err)
	}
	return n, nil
}
