package projector

import (
	"context"
	"errors"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// Doc is a cart's stored document as the fold needs it. Version 0 means the
// store has nothing for the cart yet.
type Doc struct {
	Version int
	State   cart.State
}

// Write asks the store to replace a cart's document with State, provided it
// still holds version From. Changed false means State is the stored state
// itself: nothing is written, but the indexes derived from it are made
// consistent again (a crash between a write and its ack leaves them behind).
type Write struct {
	CartID  string
	From    int
	State   cart.State
	Changed bool
}

// ErrConflict is a Write's result when the stored version is no longer From:
// another projector got there first.
var ErrConflict = errors.New("projector: cart document changed concurrently")

// Store holds the cart documents.
type Store interface {
	// Load returns the stored documents of the given carts; absent carts are
	// missing from the map.
	Load(ctx context.Context, cartIDs []string) (map[string]Doc, error)
	// Save applies the writes and returns one result per write (nil,
	// ErrConflict or another error), or an error when none could be tried.
	Save(ctx context.Context, writes []Write) ([]error, error)
}
