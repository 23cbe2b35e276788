package documents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// poison is a cart's next event as a newer writer could have stored it: a
// known type in a schema version this code does not know.
func (f *fixture) poison(tb testing.TB, cartID string) envelope.Envelope {
	tb.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	env := envelope.Envelope{
		EventID: newID(), StreamID: cartID, StreamType: envelope.StreamTypeCart, Version: len(f.events[cartID]) + 1,
		Type: cart.TypeItemAdded, SchemaVersion: 99,
		Data:       json.RawMessage(`{"productId":"123","quantity":1,"price":{"gross":1899}}`),
		Metadata:   envelope.Metadata{Actor: "test"},
		OccurredAt: time.Now().UTC().Truncate(time.Microsecond),
	}
	f.events[cartID] = append(f.events[cartID], env)
	return env
}

// parked returns a cart's parked events, as the admin API lists them.
func parked(tb testing.TB, p *documents.Projector, cartID string) []documents.Parked {
	tb.Helper()
	carts, err := p.ParkedCarts(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range carts {
		if c.CartID == cartID {
			return c.Events
		}
	}
	return nil
}

func versions(ps []documents.Parked) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.Event.Version
	}
	return out
}

func TestProjector_ParksPoisonAfterMaxDeliverWhileOtherCartsFlow(t *testing.T) {
	f := mustFixture(t)
	const maxDeliver = 3
	p := f.startProjector(t, documents.Config{MaxDeliver: maxDeliver}, engine.Config{})
	poisoned, healthy := newID(), newID()

	f.publish(t, f.record(t, poisoned, script("pat", 3, false)...), "")
	f.waitDocs(t, poisoned)
	bad := f.poison(t, poisoned)
	f.insert(t, []envelope.Envelope{bad})
	f.publish(t, []envelope.Envelope{bad}, "")
	behind := f.record(t, poisoned, cart.ItemAdded{ProductID: "456", Name: "Ceramic mug", UnitPrice: 1250, Currency: "EUR", Quantity: 1})
	f.publish(t, behind, "")
	// Another cart keeps flowing while the poison is retried.
	f.publish(t, f.record(t, healthy, script("hal", 8, true)...), "")
	f.waitDocs(t, healthy)

	f.waitSettled(t, durable)
	got := parked(t, p.proj, poisoned)
	if want := []int{4, 5}; fmt.Sprint(versions(got)) != fmt.Sprint(want) {
		t.Fatalf("parked versions %v, want %v", versions(got), want)
	}
	head := got[0]
	if head.Event.EventID != bad.EventID || head.Attempts != maxDeliver || !strings.Contains(head.Error, "unknown event type or schema version") ||
		head.FirstParkedAt.IsZero() {
		t.Errorf("parked poison = %+v", head)
	}
	if !strings.Contains(got[1].Error, "waiting behind version 4") {
		t.Errorf("event parked behind it = %+v", got[1])
	}
	f.waitCart(t, poisoned, 3)
	if n := counter(p.metrics.Parked); n != 2 {
		t.Errorf("parked counter = %d, want 2", n)
	}

	t.Run("LaterEventsParkBehind", func(t *testing.T) {
		f.publish(t, f.record(t, poisoned, cart.QuantityChanged{ProductID: "456", OldQuantity: 1, NewQuantity: 2}), "")
		f.waitSettled(t, durable)
		if got := versions(parked(t, p.proj, poisoned)); fmt.Sprint(got) != "[4 5 6]" {
			t.Fatalf("parked versions %v, want [4 5 6]", got)
		}
		f.waitCart(t, poisoned, 3)
	})

	t.Run("RetryKeepsAPoisonParked", func(t *testing.T) {
		r, err := p.proj.Retry(context.Background(), poisoned)
		if err != nil {
			t.Fatal(err)
		}
		if r.Applied != 0 || r.StillParked != 3 || r.Error == "" || r.Version != 3 {
			t.Fatalf("Retry = %+v", r)
		}
		if h := parked(t, p.proj, poisoned)[0]; h.Attempts != maxDeliver+1 {
			t.Errorf("attempts after a retry = %d, want %d", h.Attempts, maxDeliver+1)
		}
	})

	t.Run("Skip", func(t *testing.T) {
		r, err := p.proj.Skip(context.Background(), poisoned)
		if err != nil {
			t.Fatal(err)
		}
		if r.Applied != 3 || r.StillParked != 0 || r.Version != 6 {
			t.Fatalf("Skip = %+v", r)
		}
		f.waitCart(t, poisoned, -1, 4)
		if got := parked(t, p.proj, poisoned); len(got) != 0 {
			t.Fatalf("still parked after skip: %v", versions(got))
		}
		skipped, err := f.redis.Client.HGet(context.Background(), f.keys.Cart(poisoned), "skipped").Result()
		if err != nil || skipped != "4" {
			t.Fatalf("skipped field = %q, %v; want 4", skipped, err)
		}
	})

	t.Run("LaterEventsFlowAndRepairPassesOverTheSkipped", func(t *testing.T) {
		// The history falls out of step: the next event rebuilds it from
		// PostgreSQL, where the poison still is.
		if err := f.redis.Client.Del(context.Background(), f.keys.History(poisoned)).Err(); err != nil {
			t.Fatal(err)
		}
		f.publish(t, f.record(t, poisoned, cart.ItemRemoved{ProductID: "456", Quantity: 2, Reason: cart.ReasonCustomer}), "")
		f.waitCart(t, poisoned, -1, 4)
		f.waitSettled(t, durable)
		if got := parked(t, p.proj, poisoned); len(got) != 0 {
			t.Fatalf("parked again: %v", versions(got))
		}
	})
}

// failing is an Applier that cannot apply one event while broken is set —
// an apply error that is not a decode failure and not transient.
type failing struct {
	eventID string
	broken  atomic.Bool
}

func (a *failing) apply(s cart.State, e envelope.Envelope) (cart.State, error) {
	if e.EventID == a.eventID && a.broken.Load() {
		return s, errors.New("price service answered nonsense")
	}
	return documents.Evolve(s, e)
}

func TestProjector_RetryAppliesParkedEventsOnceTheyApply(t *testing.T) {
	f := mustFixture(t)
	id, other := newID(), newID()
	envs := f.build(t, id, script("ria", 6, false)...)
	a := &failing{eventID: envs[3].EventID}
	a.broken.Store(true)
	p := f.startProjector(t, documents.Config{MaxDeliver: 2, Applier: a.apply}, engine.Config{})

	f.insert(t, envs)
	f.publish(t, envs, "")
	f.publish(t, f.record(t, other, script("oli", 5, false)...), "")
	f.waitDocs(t, other)
	f.waitSettled(t, durable)
	if got := versions(parked(t, p.proj, id)); fmt.Sprint(got) != "[4 5 6]" {
		t.Fatalf("parked versions %v, want [4 5 6]", got)
	}
	f.waitCart(t, id, 3)

	if _, err := p.proj.Retry(context.Background(), other); !errors.Is(err, documents.ErrNotParked) {
		t.Fatalf("Retry of a cart without parked events: err = %v, want ErrNotParked", err)
	}
	a.broken.Store(false)
	r, err := p.proj.Retry(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Applied != 3 || r.StillParked != 0 || r.Version != 6 || r.Error != "" {
		t.Fatalf("Retry = %+v", r)
	}
	f.waitDocs(t, id)
	if got := parked(t, p.proj, id); len(got) != 0 {
		t.Fatalf("still parked: %v", versions(got))
	}
	if _, err := p.proj.Retry(context.Background(), id); !errors.Is(err, documents.ErrNotParked) {
		t.Fatalf("second Retry: err = %v, want ErrNotParked", err)
	}
	// The cart flows again.
	f.publish(t, f.record(t, id, cart.CheckedOut{}), "")
	f.waitDocs(t, id)
	f.waitOpenCart(t, "ria", "")
}
