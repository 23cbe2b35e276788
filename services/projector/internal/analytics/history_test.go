package analytics_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
)

// history writes a realistic random history: carts of many customers,
// commands decided by the domain (adds, re-adds, quantity changes, removals
// by the customer and by the system, checkouts, carts left open), with
// times spread over weeks, and the product names changing over time.
type history struct {
	rng   *rand.Rand
	carts []*histCart
	open  []*histCart // not done yet
	// poison, when set, adds an event of a schema version the code does
	// not know into the next cart that has a few events.
	poison bool
}

type histCart struct {
	id      string
	state   cart.State
	version int
	when    time.Time
	done    bool
}

var catalog = []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"}

func newHistory(seed uint64, carts int) *history {
	h := &history{rng: rand.New(rand.NewPCG(seed, seed+1))}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range carts {
		h.carts = append(h.carts, &histCart{
			id:   uuid.NewString(),
			when: base.Add(time.Duration(h.rng.Int64N(int64(30 * 24 * time.Hour)))).Truncate(time.Microsecond),
		})
	}
	h.open = append(h.open, h.carts...)
	return h
}

// next returns the events of one more command on a random cart that is
// not finished, or nil when every cart is.
func (h *history) next(tb testing.TB) []envelope.Envelope {
	tb.Helper()
	for len(h.open) > 0 {
		i := h.rng.IntN(len(h.open))
		c := h.open[i]
		evs := h.step(tb, c)
		if c.done {
			h.open[i] = h.open[len(h.open)-1]
			h.open = h.open[:len(h.open)-1]
		}
		if len(evs) > 0 {
			return evs
		}
	}
	return nil
}

func (h *history) step(tb testing.TB, c *histCart) []envelope.Envelope {
	tb.Helper()
	customer := "customer-" + c.id[:8]
	actor := cart.Actor{ID: customer}
	var cmd cart.Command
	p := catalog[h.rng.IntN(len(catalog))]
	switch n := h.rng.IntN(100); {
	case c.state.Status == cart.StatusNone:
		cmd = cart.Open{}
	case n < 40:
		name := fmt.Sprintf("Product %s (%d)", p, c.when.Day()/10)
		cmd = cart.AddItem{ProductID: p, Quantity: 1 + h.rng.IntN(3), Product: &cart.Product{ID: p, Name: name, UnitPrice: 250, Currency: "EUR", Available: true}}
	case n < 60:
		cmd = cart.ChangeQuantity{ProductID: p, Quantity: 1 + h.rng.IntN(6)}
	case n < 75:
		cmd = cart.RemoveItem{ProductID: p}
	case n < 82:
		cmd, actor = cart.RemoveItem{ProductID: p, Reason: cart.ReasonProductUnavailable}, cart.Actor{ID: "catalog", System: true}
	case n < 92:
		cmd = cart.Checkout{}
	case n < 95 && len(c.state.Lines) > 0:
		c.done = true // abandoned: left open with items
		return nil
	default:
		return nil
	}
	evs, err := cart.Decide(c.state, actor, cmd)
	if err != nil {
		return nil
	}
	var out []envelope.Envelope
	for _, ev := range evs {
		c.when = c.when.Add(time.Duration(1+h.rng.Int64N(int64(6*time.Hour/time.Millisecond))) * time.Millisecond)
		if h.poison && c.version >= 2 {
			h.poison = false
			c.version++
			out = append(out, envelope.Envelope{
				EventID: uuid.NewString(), StreamID: c.id, StreamType: envelope.StreamTypeCart, Version: c.version,
				Type: cart.TypeItemAdded, SchemaVersion: 99, Data: []byte(`{"productId":"p9","future":true}`),
				Metadata: envelope.Metadata{Actor: customer}, OccurredAt: c.when,
			})
		}
		c.version++
		env, err := envelope.New(uuid.NewString(), c.id, c.version, ev, envelope.Metadata{Actor: actor.ID}, c.when)
		if err != nil {
			tb.Fatal(err)
		}
		r, err := env.Recorded()
		if err != nil {
			tb.Fatal(err)
		}
		c.state = cart.Evolve(c.state, r)
		out = append(out, env)
	}
	if c.state.Status == cart.StatusCheckedOut {
		c.done = true
	}
	return out
}
