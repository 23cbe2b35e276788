package postgres_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/services/command/internal/postgres"
)

// Two instances write one cart, each through its own state cache. Whichever
// decided on a state the other had moved on loses the compare-and-set,
// reloads and decides again: every command is applied exactly once, and the
// stream folds to what both instances answered.
func TestStateCache_TwoInstancesOneCart(t *testing.T) {
	a, pool := mustRepo(t)
	b := postgres.New(pool, postgres.WithClock(stepClock()))
	t.Cleanup(b.Close)
	id := mustOpen(t, a, alice)
	beans := mustProduct(t, a, "123")

	// Both caches hold version 1; b then moves the cart on, so a's entry is
	// stale.
	mustDo(t, b, id, alice, add(beans, 1))
	mustDo(t, a, id, alice, add(beans, 1)) // decided on the stale v1, must land as v3
	if v := mustDo(t, b, id, alice, cart.ChangeQuantity{ProductID: "123", Quantity: 5}); v != 4 {
		t.Fatalf("b's change after a's add answered v%d, want v4", v)
	}

	// And many commands from both at once.
	var (
		wg sync.WaitGroup
		ok atomic.Int64
	)
	for i := range 40 {
		repo := a
		if i%2 == 1 {
			repo = b
		}
		wg.Go(func() {
			_, err := do(t.Context(), repo, id, alice, add(beans, 1))
			switch {
			case err == nil:
				ok.Add(1)
			case !isConflict(err): // a lost race is a 409, and writes nothing
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s, evs := fullFold(t, pool, id)
	added := 0
	for _, e := range evs {
		if e.Type == "cart.item-added" {
			added++
		}
	}
	// 5 after the change, plus one unit per add that was applied after it.
	if want := 5 + added - 2; s.Lines[0].Quantity != want {
		t.Errorf("quantity %d after %d adds, want %d: an add was lost or applied twice", s.Lines[0].Quantity, added, want)
	}
	if int64(added-2) != ok.Load() {
		t.Errorf("%d adds applied, %d answered ok", added-2, ok.Load())
	}
	for i, e := range evs {
		if e.Version != i+1 {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
	}
}

// A refusal decided on a stale cached state is decided again on the cart as
// it is: the item another instance added can be removed at once.
func TestStateCache_RefusalIsDecidedOnFreshState(t *testing.T) {
	a, pool := mustRepo(t)
	b := postgres.New(pool, postgres.WithClock(stepClock()))
	t.Cleanup(b.Close)
	id := mustOpen(t, a, alice)
	mustDo(t, b, id, alice, add(mustProduct(t, b, "456"), 2)) // a still caches the empty cart
	if v := mustDo(t, a, id, alice, cart.RemoveItem{ProductID: "456"}); v != 3 {
		t.Fatalf("remove answered v%d, want v3", v)
	}
}

// An idempotent retry sent to another instance, after the first one
// restarted (empty caches), is answered from the stored response and
// appends nothing.
func TestStateCache_IdempotentRetryOnAnotherInstance(t *testing.T) {
	a, pool := mustRepo(t)
	id := mustOpen(t, a, alice)
	resp, err := addKeyed(t.Context(), t, a, id, alice, "k-1", 2)
	first := mustFresh(t, resp, err, id, 2)
	a.Close()

	b := postgres.New(pool, postgres.WithClock(stepClock()))
	t.Cleanup(b.Close)
	resp, err = addKeyed(t.Context(), t, b, id, alice, "k-1", 2)
	mustReplay(t, resp, err, first)
	if n := count(t, pool, "events"); n != 2 {
		t.Errorf("%d events after the retry, want 2", n)
	}
	// Its cache now holds the cart, and a new command still lands once.
	if v := mustDo(t, b, id, alice, add(mustProduct(t, b, "123"), 1)); v != 3 {
		t.Errorf("next command answered v%d, want v3", v)
	}
}

// A change to the catalog is seen by the next command, although the
// product was cached: the new price goes into the event, an unavailable
// product is refused, and one made available again is accepted.
func TestCatalogChangeSeenByNextCommand(t *testing.T) {
	repo, pool := mustRepo(t)
	id := mustOpen(t, repo, alice)
	mustDo(t, repo, id, alice, add(mustProduct(t, repo, "123"), 1)) // cached now

	exec := func(sql string) {
		t.Helper()
		if _, err := pool.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	// The handler's way: the product is looked up each time the command is
	// decided.
	addBeans := func() (int, error) {
		return repo.Update(t.Context(), id, alice, md, func(s cart.State) ([]cart.Event, error) {
			p, err := repo.Product(t.Context(), "123")
			if err != nil {
				return nil, err
			}
			return cart.Decide(s, alice, cart.AddItem{ProductID: "123", Quantity: 1, Product: p})
		})
	}

	exec(`UPDATE products SET unit_price = 2099 WHERE product_id = '123'`)
	if _, err := addBeans(); err != nil {
		t.Fatal(err)
	}
	if s, _ := fullFold(t, pool, id); s.Lines[0].UnitPrice != 2099 {
		t.Errorf("line after the price change: %+v, want unit price 2099", s.Lines[0])
	}

	exec(`UPDATE products SET available = false WHERE product_id = '123'`)
	if _, err := addBeans(); err == nil {
		t.Fatal("an unavailable product was added")
	}
	exec(`UPDATE products SET available = true WHERE product_id = '123'`)
	if _, err := addBeans(); err != nil {
		t.Fatalf("a product available again was refused: %v", err)
	}
}
