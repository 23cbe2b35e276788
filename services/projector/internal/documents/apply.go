package documents

import (
	"errors"
	"slices"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
)

// Applier folds one stored event onto a cart's state. An error means the
// event cannot be applied (it does not decode, or its effect cannot be
// computed): it is retried up to Config.MaxDeliver deliveries and then
// parked. An error wrapping ErrTransient is an infrastructure failure:
// retried, never parked.
type Applier func(s cart.State, e envelope.Envelope) (cart.State, error)

// ErrTransient marks an Applier error as temporary.
var ErrTransient = errors.New("documents: transient failure")

// Evolve is the projector's Applier: it decodes (and upcasts) the event and
// folds it with the domain's own fold.
func Evolve(s cart.State, e envelope.Envelope) (cart.State, error) {
	r, err := e.Recorded()
	if err != nil {
		return s, err
	}
	return cart.Evolve(s, r), nil
}

// Step applies one event to s with apply and returns the new state and the
// event's history entry. A skipped version is folded as an event without
// effect: its version and time count, and it stays in the history, marked.
func Step(apply Applier, s cart.State, e envelope.Envelope, skipped bool) (cart.State, readmodel.HistoryEntry, error) {
	h := readmodel.NewHistoryEntry(e)
	if skipped {
		h.Skipped = true
		s = cart.Evolve(s, cart.Recorded{CartID: e.StreamID, Version: e.Version, OccurredAt: e.OccurredAt})
		if s.CartID == "" {
			s.CartID = e.StreamID
		}
		return s, h, nil
	}
	next, err := apply(s, e)
	if err != nil {
		return s, h, err
	}
	return next, h, nil
}

// historyEntries turns stored events into history entries, marking the
// skipped versions.
func historyEntries(envs []envelope.Envelope, skipped []int) []readmodel.HistoryEntry {
	out := make([]readmodel.HistoryEntry, len(envs))
	for i, e := range envs {
		out[i] = readmodel.NewHistoryEntry(e)
		out[i].Skipped = slices.Contains(skipped, e.Version)
	}
	return out
}
