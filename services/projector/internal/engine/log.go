package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// Log is the event log in PostgreSQL, the source of truth, as projections
// read it: to repair a gap, and to build a generation.
type Log interface {
	// ReadStream returns a cart's events after < version <= upTo in
	// version order; upTo <= 0 means to the end of the stream.
	ReadStream(ctx context.Context, cartID string, after, upTo int) ([]envelope.Envelope, error)
	// ReadSpans reads many carts' spans at once, by cart, in version order.
	ReadSpans(ctx context.Context, spans []Span) (map[string][]envelope.Envelope, error)
	// ReadPage reads up to limit events after key in (cart, version) order.
	ReadPage(ctx context.Context, after Key, limit int) ([]envelope.Envelope, error)
	// Scan calls fn for each event with after < position <= upTo, in
	// position order, at most limit of them, and returns how many it read
	// and the position of the last. The envelope is valid only during the
	// call: what fn keeps it must clone.
	Scan(ctx context.Context, after, upTo int64, limit int, fn func(*envelope.Envelope) error) (n int, last int64, err error)
	// End returns how many events the log holds and its last position.
	End(ctx context.Context) (count, last int64, err error)
}

// Span is the versions After+1..UpTo of one cart.
type Span struct {
	CartID      string
	After, UpTo int
}

// Key is a place in the log ordered by cart, then version; the zero Key
// is before every event.
type Key struct {
	CartID  string
	Version int
}

// ErrGapOpen means the event log does not have the missing events either.
var ErrGapOpen = errors.New("events missing from the event log")

// ReadGap reads a cart's versions after+1..upTo (upTo > after) and insists
// they are all there.
func ReadGap(ctx context.Context, log Log, cartID string, after, upTo int) ([]envelope.Envelope, error) {
	envs, err := log.ReadStream(ctx, cartID, after, upTo)
	if err != nil {
		return nil, err
	}
	for i, e := range envs {
		if e.Version != after+1+i {
			return nil, fmt.Errorf("cart %s: version %d at %d: %w", cartID, e.Version, after+1+i, ErrGapOpen)
		}
	}
	if len(envs) != upTo-after {
		return nil, fmt.Errorf("cart %s versions %d..%d: found %d: %w", cartID, after+1, upTo, len(envs), ErrGapOpen)
	}
	return envs, nil
}
