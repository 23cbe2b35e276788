package relay

import (
	"slices"
	"sync"

	"github.com/cart-cqrs/cart/pkg/envelope"
)

// The hand-off. When this process's relay leads, the command service's
// commits give it the events they appended, with their positions, the
// moment they commit (Committed), and wake it in-process: the relay
// publishes them without a NOTIFY and without reading them back. The outbox
// rows stay the record of what is unpublished — a handed-off event is
// removed only after its PubAck, like any other — so an event the hand-off
// drops (the queue full, leadership lost meanwhile) is still published, by
// an outbox round.
//
// Per-cart order. A round of handed-off events publishes a cart's event v
// only when the relay knows the stream already holds v-1 (heads), or v is the
// cart's first: every earlier event of the cart is then in the stream, in
// order, whoever appended it. Otherwise the relay leaves the event to an
// outbox round, which reads the cart's unpublished rows in position order. A
// cart whose previous event another command instance appended and the relay
// has not yet read is one of those, and so is a cart not seen since this
// relay took the lead.

// Defaults of the hand-off.
const (
	// maxHandoff bounds the events waiting in the hand-off; past it they are
	// left to an outbox round.
	maxHandoff = 1024
	// maxHeads bounds the carts whose stream head the relay remembers.
	maxHeads = 4096
)

// handoff is the queue of committed events waiting for the leader, and the
// wake-up of its loop. Committers add to it from any goroutine; the leader's
// loop takes from it.
type handoff struct {
	// wake has room for one signal: a commit or a notification arriving
	// while the loop works is kept for its next wait.
	wake chan struct{}

	mu     sync.Mutex
	open   bool // the leader takes events: Committed queues them
	events []envelope.Envelope
	// outboxDue is set when an outbox round must run: events were dropped,
	// or another command instance notified that it committed some.
	outboxDue bool
}

func newHandoff() *handoff {
	return &handoff{wake: make(chan struct{}, 1)}
}

// signal wakes the loop; it never blocks.
func (h *handoff) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// accepting reports whether committed events are handed off now.
func (h *handoff) accepting() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.open
}

// setOpen opens or closes the hand-off; closing drops what waits (it is in
// the outbox).
func (h *handoff) setOpen(open bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open, h.events, h.outboxDue = open, nil, false
}

// add queues evs for the leader and wakes it.
func (h *handoff) add(evs []envelope.Envelope) {
	h.mu.Lock()
	open := h.open
	switch {
	case !open:
	case len(h.events)+len(evs) > maxHandoff:
		h.outboxDue = true
	default:
		h.events = append(h.events, evs...)
	}
	h.mu.Unlock()
	if open {
		h.signal()
	}
}

// notified records that another writer committed outbox rows, and wakes the
// leader.
func (h *handoff) notified() {
	h.mu.Lock()
	h.outboxDue = true
	h.mu.Unlock()
	h.signal()
}

// take returns the queued events, and whether an outbox round is due since
// the last take (events were dropped, or another writer committed some).
func (h *handoff) take() ([]envelope.Envelope, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	evs, due := h.events, h.outboxDue
	h.events, h.outboxDue = nil, false
	return evs, due
}

// heads remembers, per cart, the highest version the stream is known to
// hold: the relay saw its PubAck. It is bounded: past maxHeads carts, some
// are forgotten, and their next events take the outbox round. The leader's
// loop alone uses it.
type heads map[string]int

// published records that the stream holds evs.
func (hs heads) published(evs []envelope.Envelope) {
	for _, e := range evs {
		if e.Version <= hs[e.StreamID] {
			continue
		}
		if _, ok := hs[e.StreamID]; !ok && len(hs) >= maxHeads {
			for k := range hs { // forget an arbitrary cart
				delete(hs, k)
				break
			}
		}
		hs[e.StreamID] = e.Version
	}
}

// sort splits handed-off events: those that may be published now (in
// their carts, every earlier event is in the stream or is among them), and
// whether any must wait for an outbox round. Events the stream already holds
// (an outbox round published them first) are left out.
func (hs heads) sort(evs []envelope.Envelope) (ready []envelope.Envelope, deferred bool) {
	// next is the version each cart's following event must have; -1 once
	// the cart's events wait for an outbox round.
	next := make(map[string]int)
	for _, e := range sortedByCart(evs) {
		want, seen := next[e.StreamID]
		if !seen {
			switch h, known := hs[e.StreamID]; {
			case known:
				want = h + 1
			case e.Version == 1:
				want = 1
			default:
				want = -1 // where the cart's stream ends is not known
			}
		}
		switch {
		case want < 0:
			deferred = true
		case e.Version < want:
			// Already in the stream.
		case e.Version == want:
			ready = append(ready, e)
			want++
		default: // an event between is not here: the outbox has it
			deferred = true
			want = -1
		}
		next[e.StreamID] = want
	}
	return ready, deferred
}

// sortedByCart returns evs ordered by cart, then version; the carts in order
// of their first event.
func sortedByCart(evs []envelope.Envelope) []envelope.Envelope {
	order := make(map[string]int)
	var byCart [][]envelope.Envelope
	for _, e := range evs {
		i, ok := order[e.StreamID]
		if !ok {
			i = len(byCart)
			order[e.StreamID] = i
			byCart = append(byCart, nil)
		}
		byCart[i] = append(byCart[i], e)
	}
	out := make([]envelope.Envelope, 0, len(evs))
	for _, c := range byCart {
		slices.SortStableFunc(c, func(a, b envelope.Envelope) int { return a.Version - b.Version })
		out = append(out, c...)
	}
	return out
}
