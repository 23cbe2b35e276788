package postgres_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/cart-cqrs/cart/pkg/cart"
)

// TestConcurrentWriters: many writers on one cart never lose an update. Each
// either lands (and is in the log) or gets the 409 conflict; versions stay
// contiguous and every event has exactly one outbox row.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	const writers = 50
	repo, pool := mustRepo(t)
	id := mustOpen(t, repo, alice)
	beans := mustProduct(t, repo, "123")

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		successes int
		failures  []error
	)
	for range writers {
		wg.Go(func() {
			_, err := do(t.Context(), repo, id, alice, add(beans, 1))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, err)
				return
			}
			successes++
		})
	}
	wg.Wait()

	for _, err := range failures {
		if !isConflict(err) {
			t.Errorf("a writer failed with %v; only the 409 concurrent-modification is acceptable", err)
		}
	}
	if successes == 0 {
		t.Fatal("no writer succeeded")
	}
	t.Logf("%d of %d writers succeeded, %d got 409", successes, writers, len(failures))

	s, evs := fullFold(t, pool, id)
	if len(evs) != successes+1 {
		t.Fatalf("%d events for %d successful updates + open", len(evs), successes)
	}
	for i, e := range evs {
		if e.Version != i+1 {
			t.Fatalf("event %d has version %d: versions are not contiguous", i, e.Version)
		}
	}
	if l, ok := s.Line("123"); !ok || l.Quantity != successes {
		t.Fatalf("quantity = %d, want %d (one unit per successful update)", l.Quantity, successes)
	}
	if o := count(t, pool, "outbox"); o != len(evs) {
		t.Fatalf("%d outbox rows for %d events", o, len(evs))
	}
	var distinct int
	if err := pool.QueryRow(t.Context(),
		`SELECT count(DISTINCT o.position) FROM outbox o JOIN events e USING (position) WHERE e.stream_id = $1`, id,
	).Scan(&distinct); err != nil || distinct != len(evs) {
		t.Fatalf("outbox covers %d of the cart's %d events (%v)", distinct, len(evs), err)
	}
	var head int
	if err := pool.QueryRow(t.Context(), `SELECT version FROM carts WHERE cart_id = $1`, id).Scan(&head); err != nil || head != len(evs) {
		t.Fatalf("carts.version = %d (%v), want %d", head, err, len(evs))
	}
}

// TestConcurrentOpen: a customer racing itself gets one cart.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	const openers = 20
	repo, pool := mustRepo(t)

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ids     = map[string]int{}
		created int
		errs    []error
	)
	for range openers {
		wg.Go(func() {
			id, _, c, err := repo.Open(t.Context(), alice, md)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			ids[id]++
			if c {
				created++
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Open failed: %v", err)
	}
	if len(ids) != 1 || created != 1 {
		t.Fatalf("%d distinct carts, %d created by %d concurrent Opens; want 1 and 1", len(ids), created, openers)
	}
	if n := count(t, pool, "carts"); n != 1 {
		t.Fatalf("%d carts rows, want 1", n)
	}
	if n, o := count(t, pool, "events"), count(t, pool, "outbox"); n != 1 || o != 1 {
		t.Fatalf("%d events and %d outbox rows, want 1 and 1", n, o)
	}
}

// TestEventsAndOutboxTogether: after a mix of successful, refused, no-op and
// racing commands on several carts, every event has its outbox row.
func TestEventsAndOutboxTogether(t *testing.T) {
	t.Parallel()
	repo, pool := mustRepo(t)
	beans, mug := mustProduct(t, repo, "123"), mustProduct(t, repo, "456")

	var wg sync.WaitGroup
	for _, who := range []string{"c1", "c2", "c3", "c4"} {
		by := cart.Actor{ID: who}
		wg.Go(func() {
			ctx := t.Context()
			id, _, _, err := repo.Open(ctx, by, md)
			if err != nil {
				t.Errorf("open %s: %v", who, err)
				return
			}
			cmds := []cart.Command{
				add(beans, 2), add(mug, 1), cart.ChangeQuantity{ProductID: "123", Quantity: 2}, // no-op
				cart.RemoveItem{ProductID: "789"}, // refused
				cart.ChangeQuantity{ProductID: "456", Quantity: 5}, cart.Checkout{},
				add(beans, 1), // refused: checked out
			}
			for _, c := range cmds {
				if _, err := do(ctx, repo, id, by, c); err != nil {
					var ce *cart.Error
					if !errors.As(err, &ce) && !isConflict(err) {
						t.Errorf("%T on %s: %v", c, who, err)
					}
				}
			}
		})
	}
	wg.Wait()
	n, o := count(t, pool, "events"), count(t, pool, "outbox")
	if n != 4*5 || o != n {
		t.Fatalf("%d events, %d outbox rows; want 20 and 20", n, o)
	}
}
