package redisstore_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/pkg/readmodel"
	"github.com/cart-cqrs/cart/pkg/redistest"
	"github.com/cart-cqrs/cart/services/projector/internal/documents"
	"github.com/cart-cqrs/cart/services/projector/internal/redisstore"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func opened(cartID, customer string, at time.Time, version int) cart.State {
	s := cart.Evolve(cart.State{}, cart.Recorded{CartID: cartID, Version: 1, OccurredAt: at, Event: cart.Opened{CustomerID: customer}})
	for v := 2; v <= version; v++ {
		s = cart.Evolve(s, cart.Recorded{CartID: cartID, Version: v, OccurredAt: at.Add(time.Minute),
			Event: cart.ItemAdded{ProductID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Quantity: 1}})
	}
	return s
}

func checkedOut(s cart.State) cart.State {
	return cart.Evolve(s, cart.Recorded{CartID: s.CartID, Version: s.Version + 1, OccurredAt: s.UpdatedAt.Add(time.Minute), Event: cart.CheckedOut{}})
}

type fixture struct {
	env   redistest.Env
	keys  readmodel.Keys
	store *redisstore.Store
}

func mustStore(t *testing.T) fixture {
	env := redistest.MustRedis(t)
	keys := readmodel.Keys{Prefix: env.Prefix, Generation: 1}
	return fixture{env: env, keys: keys, store: redisstore.New(env.Client, env.Prefix)}
}

// save stores one write into the current generation.
func (f fixture) save(t *testing.T, w documents.Write) error {
	t.Helper()
	return f.change(t, documents.Change{CartID: w.CartID, Writes: []documents.Write{w}})
}

func (f fixture) change(t *testing.T, c documents.Change) error {
	t.Helper()
	ctx := context.Background()
	gens, err := f.store.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.store.Save(ctx, gens, []documents.Change{c})
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	return res[0].Err
}

// load reads documents of the current generation.
func (f fixture) load(t *testing.T, ids ...string) map[string]documents.Doc {
	t.Helper()
	ctx := context.Background()
	gens, err := f.store.Generations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := f.store.Load(ctx, gens, ids)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]documents.Doc{}
	for id, r := range recs {
		docs[id] = r.Docs[0]
	}
	return docs
}

func (f fixture) openCart(t *testing.T, customer string) string {
	t.Helper()
	id, err := f.env.Client.Get(context.Background(), f.keys.OpenCart(customer)).Result()
	if errors.Is(err, goredis.Nil) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestStore_SaveIsGuardedByVersion(t *testing.T) {
	f := mustStore(t)
	s := opened("a", "alice", t0, 2)
	if err := f.save(t, documents.Write{CartID: "a", From: 0, State: s, Changed: true}); err != nil {
		t.Fatal(err)
	}
	docs := f.load(t, "a", "absent")
	if got := docs["a"]; got.Version != 2 || !reflect.DeepEqual(got.State, s) {
		t.Fatalf("Load = %+v, want version 2 and %+v", got, s)
	}
	if _, ok := docs["absent"]; ok {
		t.Fatal("Load returned a document for an absent cart")
	}
	// Computed from a version that is no longer stored: someone else won.
	if err := f.save(t, documents.Write{CartID: "a", From: 1, State: opened("a", "alice", t0, 3), Changed: true}); !errors.Is(err, documents.ErrConflict) {
		t.Fatalf("stale write: err = %v, want ErrConflict", err)
	}
	if err := f.save(t, documents.Write{CartID: "a", From: 0, State: s}); !errors.Is(err, documents.ErrConflict) {
		t.Fatalf("stale index-only write: err = %v, want ErrConflict", err)
	}
}

func TestStore_OpenCartIndex(t *testing.T) {
	f := mustStore(t)
	older := opened("older", "alice", t0, 2)
	newer := opened("newer", "alice", t0.Add(time.Hour), 1)

	t.Run("OpenSetsCheckoutRemoves", func(t *testing.T) {
		if err := f.save(t, documents.Write{CartID: "older", From: 0, State: older, Changed: true}); err != nil {
			t.Fatal(err)
		}
		if got := f.openCart(t, "alice"); got != "older" {
			t.Fatalf("open cart = %q, want older", got)
		}
		if err := f.save(t, documents.Write{CartID: "older", From: 2, State: checkedOut(older), Changed: true}); err != nil {
			t.Fatal(err)
		}
		if got := f.openCart(t, "alice"); got != "" {
			t.Fatalf("open cart after checkout = %q, want none", got)
		}
		if err := f.save(t, documents.Write{CartID: "newer", From: 0, State: newer, Changed: true}); err != nil {
			t.Fatal(err)
		}
		if got := f.openCart(t, "alice"); got != "newer" {
			t.Fatalf("open cart = %q, want newer", got)
		}
	})
	t.Run("LateEventOfOlderCartLeavesIt", func(t *testing.T) {
		// Another cart of alice's, opened before "newer", projected late
		// (e.g. its events were waiting for a redelivery).
		late := opened("late", "alice", t0.Add(time.Minute), 1)
		if err := f.save(t, documents.Write{CartID: "late", From: 0, State: late, Changed: true}); err != nil {
			t.Fatal(err)
		}
		if got := f.openCart(t, "alice"); got != "newer" {
			t.Fatalf("open cart = %q, want newer", got)
		}
		if err := f.save(t, documents.Write{CartID: "late", From: 1, State: checkedOut(late), Changed: true}); err != nil {
			t.Fatal(err)
		}
		if got := f.openCart(t, "alice"); got != "newer" {
			t.Fatalf("open cart = %q, want newer", got)
		}
	})
	t.Run("DuplicateHealsIndex", func(t *testing.T) {
		// A crash between the document write and the index write (a
		// Redis Cluster does them in two calls) leaves the index behind.
		if err := f.env.Client.Del(context.Background(), f.keys.OpenCart("alice")).Err(); err != nil {
			t.Fatal(err)
		}
		if err := f.save(t, documents.Write{CartID: "newer", From: 1, State: newer}); err != nil {
			t.Fatal(err)
		}
		if got := f.openCart(t, "alice"); got != "newer" {
			t.Fatalf("open cart = %q, want newer", got)
		}
	})
}
