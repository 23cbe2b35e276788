package documents_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/envelope"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/engine"
)

// subscribe listens on the update channel from now on.
func (f *fixture) subscribe(t *testing.T) <-chan *goredis.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps := f.redis.Client.Subscribe(ctx, f.keys.Updates())
	t.Cleanup(func() { _ = ps.Close() })
	// The confirmation: PUBLISHes after it reach us.
	if _, err := ps.ReceiveTimeout(ctx, 10*time.Second); err != nil {
		t.Fatalf("subscribe %s: %v", f.keys.Updates(), err)
	}
	return ps.Channel()
}

func TestProjector_PublishesEachNewVersionOnce(t *testing.T) {
	f := mustFixture(t)
	updates := f.subscribe(t)
	carts := map[string]string{newID(): "alice", newID(): "bob"}
	var all []envelope.Envelope
	for id, customer := range carts {
		all = append(all, f.record(t, id, script(customer, 5, false)...)...)
	}
	f.publish(t, all, "")
	f.publish(t, all, "-again") // duplicates write nothing, so announce nothing
	f.startProjector(t, documents.Config{}, engine.Config{BatchSize: 3})
	f.waitDocs(t, ids(carts)...)
	f.waitSettled(t, durable)

	// One message per write that changed a document: versions only go up,
	// and the last one announced is the stored one.
	last := map[string]int{}
	deadline := time.After(20 * time.Second)
	for last[ids(carts)[0]] != 5 || last[ids(carts)[1]] != 5 {
		select {
		case m := <-updates:
			u, err := readmodel.ParseUpdate(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if u.CustomerID != carts[u.CartID] {
				t.Errorf("update %q: customer %q, want %q", m.Payload, u.CustomerID, carts[u.CartID])
			}
			if u.Version <= last[u.CartID] {
				t.Errorf("cart %s: version %d announced after %d", u.CartID, u.Version, last[u.CartID])
			}
			last[u.CartID] = u.Version
		case <-deadline:
			t.Fatalf("updates seen: %v, want version 5 of both carts", last)
		}
	}
	// Nothing more: the next message is a marker sent now.
	if err := f.redis.Client.Publish(context.Background(), f.keys.Updates(), "marker").Err(); err != nil {
		t.Fatal(err)
	}
	if m := <-updates; m.Payload != "marker" {
		t.Errorf("update after the last version: %q", m.Payload)
	}
}

func TestProjector_RebuildsHistoryOutOfStep(t *testing.T) {
	f := mustFixture(t)
	p := f.startProjector(t, documents.Config{}, engine.Config{})
	id := newID()
	envs := f.record(t, id, script("carol", 4, false)...)
	f.publish(t, envs, "")
	f.waitDocs(t, id)

	// A document projected before histories existed, or a lost list.
	lose := func() {
		t.Helper()
		if err := f.redis.Client.Del(context.Background(), f.keys.History(id)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("ByADuplicate", func(t *testing.T) {
		lose()
		f.publish(t, envs[3:], "-again")
		f.waitDocs(t, id)
		if got := counter(p.metrics.HistoryRepaired); got != 1 {
			t.Errorf("history repaired %d times, want 1", got)
		}
	})
	t.Run("ByTheNextEvent", func(t *testing.T) {
		lose()
		f.publish(t, f.record(t, id, cart.ItemAdded{ProductID: "789", Name: "Milk frother", UnitPrice: 3499, Currency: "EUR", Quantity: 1}), "")
		f.waitDocs(t, id)
		if got := counter(p.metrics.HistoryRepaired); got != 2 {
			t.Errorf("history repaired %d times, want 2", got)
		}
	})
	t.Run("TooLong", func(t *testing.T) {
		if err := f.redis.Client.RPush(context.Background(), f.keys.History(id), `{"version":99}`).Err(); err != nil {
			t.Fatal(err)
		}
		f.publish(t, f.record(t, id, cart.CheckedOut{}), "")
		f.waitDocs(t, id)
	})
}

func ids(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
