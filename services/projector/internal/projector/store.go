package projector

import (
	"context"
	"errors"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
)

// Doc is a cart's stored document as the fold needs it. Version 0 means the
// store has nothing for the cart yet.
type Doc struct {
	Version int
	State   cart.State
	// HistoryLen is how many events the cart's history list holds: Version,
	// unless the list fell out of step with the document (it predates the
	// history, or was lost) and must be rebuilt from the event log.
	HistoryLen int
}

// Write asks the store to replace a cart's document with State, provided it
// still holds version From. Changed false means State is the stored state
// itself: nothing is written, but the indexes derived from it are made
// consistent again (a crash between a write and its ack leaves them behind).
//
// The cart's history list is written in the same atomic step, guarded the
// same way, so a duplicate never appends an event twice.
type Write struct {
	CartID  string
	From    int
	State   cart.State
	Changed bool
	// History is the events to add to the cart's history list, as the event
	// log stored them, in version order: the ones State adds to From,
	// preceded by versions 1..From when ReplaceHistory is set.
	History []envelope.Envelope
	// HistoryLen is the length of the history list the write was computed
	// from (Doc.HistoryLen); like From, another length is ErrConflict.
	HistoryLen int
	// ReplaceHistory replaces the list instead of appending to it: it was
	// out of step with the document.
	ReplaceHistory bool
}

// ErrConflict is a Write's result when the stored version is no longer From:
// another projector got there first.
var ErrConflict = errors.New("projector: cart document changed concurrently")

// Store holds the cart documents.
type Store interface {
	// Load returns the stored documents of the given carts; absent carts are
	// missing from the map (or have Version 0 and a stray history).
	Load(ctx context.Context, cartIDs []string) (map[string]Doc, error)
	// Save applies the writes and returns one result per write (nil,
	// ErrConflict or another error), or an error when none could be tried.
	Save(ctx context.Context, writes []Write) ([]error, error)
}
