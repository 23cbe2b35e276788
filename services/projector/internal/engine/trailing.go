package engine

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Trailing registers p as a projection nobody waits for. The engine applies
// the others to each batch as it comes and holds the batch's carts for p,
// which it applies to the carts of every batch held at once — each cart
// once, its events in version order — when they reach a batch's worth,
// when the oldest has waited Config.TrailingWindow, or when the consumer
// stops. Their messages are acknowledged only then; one that another
// projection wants again is nak'ed at once, and p still sees its event.
func Trailing(p Projection) Projection { return trailing{p} }

// trailing is a projection registered with Trailing.
type trailing struct{ Projection }

// holding is what the trailing projections have yet to take: the carts of
// the batches held, merged, with their messages alongside their events.
type holding struct {
	// since is when the oldest batch held was processed.
	since time.Time
	// events counts the events held.
	events int
	byID   map[string]int
	carts  []*Cart
	// msgs are each cart's messages, nil where settled already.
	msgs [][]jetstream.Msg
}

// add holds a cart's events and messages. The cart is the holding's now:
// nothing else keeps it once a batch is processed.
func (h *holding) add(c *Cart, msgs []jetstream.Msg, now time.Time) {
	if h.events == 0 {
		h.since = now
	}
	h.events += len(c.Events)
	if h.byID == nil {
		h.byID = make(map[string]int)
	}
	i, ok := h.byID[c.ID]
	if !ok {
		h.byID[c.ID] = len(h.carts)
		h.carts = append(h.carts, c)
		h.msgs = append(h.msgs, msgs)
		return
	}
	h.carts[i].Events = append(h.carts[i].Events, c.Events...)
	h.msgs[i] = append(h.msgs[i], msgs...)
}

// take returns what is held, each cart once with its events in version
// order, and holds nothing from then on.
func (h *holding) take() ([]*Cart, [][]jetstream.Msg) {
	carts, msgs := h.carts, h.msgs
	for i, c := range carts {
		msgs[i] = sortByVersion(c, msgs[i])
	}
	clear(h.byID)
	h.carts, h.msgs, h.events = nil, nil, 0
	return carts, msgs
}

// due is when what is held must be applied at the latest — a time already
// past once it reaches the hold limit — and false when nothing is held.
func (e *Engine) due() (time.Time, bool) {
	switch {
	case e.held.events == 0:
		return time.Time{}, false
	case e.held.events >= e.cfg.holdLimit():
		return time.Time{}, true
	}
	return e.held.since.Add(e.cfg.TrailingWindow), true
}

// flush applies the trailing projections to what is held and settles its
// messages.
func (e *Engine) flush(ctx context.Context) {
	if e.held.events == 0 {
		return
	}
	carts, cartMsgs := e.held.take()
	for _, c := range carts {
		c.Ctx = cartContext(ctx, c)
	}
	retryFrom := e.apply(ctx, e.trailing, carts)
	for i, c := range carts {
		e.settle(ctx, c, cartMsgs[i], retryFrom[i])
	}
}
