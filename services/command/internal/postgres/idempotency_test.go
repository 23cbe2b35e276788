package postgres_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cart-cqrs/cart/pkg/cart"
	"github.com/cart-cqrs/cart/services/command/internal/idempotency"
	"github.com/cart-cqrs/cart/services/command/internal/postgres"
)

// movableClock is stepClock that a test can also move forward by hours.
type movableClock struct{ steps, offset atomic.Int64 }

func (c *movableClock) now() time.Time {
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return base.Add(time.Duration(c.steps.Add(1))*time.Millisecond + time.Duration(c.offset.Load()))
}

func (c *movableClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// keyed is a POST to path with body, sent by caller with key.
func keyed(t *testing.T, caller, key, path string, body any) idempotency.Request {
	t.Helper()
	hash, err := idempotency.Fingerprint(http.MethodPost, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return idempotency.Request{Caller: caller, Key: key, Method: http.MethodPost, Path: path, Hash: hash}
}

// addKeyed sends add-item of qty units of product 123 to cart id with key.
func addKeyed(ctx context.Context, t *testing.T, repo *postgres.Repository, id string, by cart.Actor, key string, qty int) (idempotency.Response, error) {
	beans := &cart.Product{ID: "123", Name: "Espresso beans 1 kg", UnitPrice: 1899, Currency: "EUR", Available: true}
	return doKeyed(ctx, repo, keyed(t, by.ID, key, "/v1/carts/"+id+"/add-item", map[string]any{"productId": "123", "quantity": qty}),
		id, by, add(beans, qty))
}

func doKeyed(ctx context.Context, repo *postgres.Repository, req idempotency.Request, id string, by cart.Actor, c cart.Command) (idempotency.Response, error) {
	return repo.UpdateIdempotent(ctx, req, id, by, md, func(s cart.State) ([]cart.Event, error) { return cart.Decide(s, by, c) })
}

func mustFresh(t *testing.T, resp idempotency.Response, err error, id string, version int) idempotency.Response {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Replayed || resp.CartID != id || resp.Version != version || resp.Status != http.StatusOK || len(resp.Body) == 0 {
		t.Fatalf("response = %+v, want a fresh 200 for %s v%d", resp, id, version)
	}
	return resp
}

func mustReplay(t *testing.T, resp idempotency.Response, err error, first idempotency.Response) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	first.Replayed = true
	if resp.Status != first.Status || string(resp.Body) != string(first.Body) || resp.CartID != first.CartID ||
		resp.Version != first.Version || !resp.Replayed {
		t.Fatalf("replay = %+v %s, want %+v %s", resp, resp.Body, first, first.Body)
	}
}

func isKeyReused(err error) bool {
	return errors.Is(err, idempotency.ErrKeyReused)
}

func keyCount(t *testing.T, pool *pgxpool.Pool, caller, key string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM idempotency_keys WHERE customer_id = $1 AND key = $2`,
		caller, key).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIdempotentUpdate(t *testing.T) {
	t.Parallel()
	repo, pool := mustRepo(t)
	id := mustOpen(t, repo, alice)
	ctx := t.Context()

	resp, err := addKeyed(ctx, t, repo, id, alice, "k1", 2)
	first := mustFresh(t, resp, err, id, 2)

	t.Run("StoredWithTheEventsInOneTransaction", func(t *testing.T) {
		var keyTx, eventTx string
		var body []byte
		var status, version int
		if err := pool.QueryRow(ctx, `SELECT xmin::text, status, response::text, version FROM idempotency_keys
			WHERE customer_id = 'alice' AND key = 'k1'`).Scan(&keyTx, &status, &body, &version); err != nil {
			t.Fatal(err)
		}
		if err := pool.QueryRow(ctx, `SELECT xmin::text FROM events WHERE stream_id = $1 AND version = 2`, id).Scan(&eventTx); err != nil {
			t.Fatal(err)
		}
		if keyTx != eventTx {
			t.Errorf("key written by transaction %s, event by %s", keyTx, eventTx)
		}
		if status != first.Status || string(body) != string(first.Body) || version != 2 {
			t.Errorf("stored %d %s v%d, want the response %d %s v2", status, body, version, first.Status, first.Body)
		}
	})
	t.Run("ReplayAppendsNothing", func(t *testing.T) {
		before := count(t, pool, "events")
		resp, err := addKeyed(ctx, t, repo, id, alice, "k1", 2)
		mustReplay(t, resp, err, first)
		if n := count(t, pool, "events"); n != before {
			t.Fatalf("a replay appended %d events", n-before)
		}
	})
	t.Run("ReusedWithAnotherBody", func(t *testing.T) {
		if _, err := addKeyed(ctx, t, repo, id, alice, "k1", 3); !isKeyReused(err) {
			t.Fatalf("err = %v, want %v", err, idempotency.ErrKeyReused)
		}
	})
	t.Run("ReusedOnAnotherRoute", func(t *testing.T) {
		req := keyed(t, "alice", "k1", "/v1/carts/"+id+"/checkout", struct{}{})
		if _, err := doKeyed(ctx, repo, req, id, alice, cart.Checkout{}); !isKeyReused(err) {
			t.Fatalf("err = %v, want %v", err, idempotency.ErrKeyReused)
		}
	})
	t.Run("OtherCallersKeyIsAnotherKey", func(t *testing.T) {
		bobs := mustOpen(t, repo, bob)
		resp, err := addKeyed(ctx, t, repo, bobs, bob, "k1", 2)
		mustFresh(t, resp, err, bobs, 2)
	})
	t.Run("RefusedIsNotStored", func(t *testing.T) {
		req := keyed(t, "alice", "k2", "/v1/carts/"+id+"/remove-item", map[string]string{"productId": "456"})
		remove := cart.RemoveItem{ProductID: "456"}
		if _, err := doKeyed(ctx, repo, req, id, alice, remove); !errors.Is(err, cart.ErrItemNotInCart) {
			t.Fatalf("err = %v, want ErrItemNotInCart", err)
		}
		if n := keyCount(t, pool, "alice", "k2"); n != 0 {
			t.Fatalf("a refused command stored its key")
		}
		// The retry is decided again, on the cart as it is now.
		v := mustDo(t, repo, id, alice, add(mustProduct(t, repo, "456"), 1))
		resp, err := doKeyed(ctx, repo, req, id, alice, remove)
		mustFresh(t, resp, err, id, v+1)
	})
	t.Run("NoOpIsStored", func(t *testing.T) {
		req := keyed(t, "alice", "k3", "/v1/carts/"+id+"/change-quantity", map[string]any{"productId": "123", "quantity": 2})
		change := cart.ChangeQuantity{ProductID: "123", Quantity: 2}
		s, err := repo.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		before := count(t, pool, "events")
		resp, err := doKeyed(ctx, repo, req, id, alice, change)
		noop := mustFresh(t, resp, err, id, s.Version)
		if n := count(t, pool, "events"); n != before {
			t.Fatalf("a no-op appended %d events", n-before)
		}
		mustDo(t, repo, id, alice, cart.ChangeQuantity{ProductID: "123", Quantity: 5})
		// The retry answers as the first request was answered, although
		// deciding again would now change the quantity back.
		resp, err = doKeyed(ctx, repo, req, id, alice, change)
		mustReplay(t, resp, err, noop)
	})
}

// TestIdempotentUpdateRollsBackKey: when the append loses a race to another
// writer, the key goes with it, and the retry stores it with its own events.
func TestIdempotentUpdateRollsBackKey(t *testing.T) {
	t.Parallel()
	repo, pool := mustRepo(t)
	id := mustOpen(t, repo, alice)
	beans := mustProduct(t, repo, "123")
	req := keyed(t, "alice", "k", "/v1/carts/"+id+"/add-item", map[string]any{"productId": "123", "quantity": 1})

	var interfered atomic.Bool
	resp, err := repo.UpdateIdempotent(t.Context(), req, id, alice, md, func(s cart.State) ([]cart.Event, error) {
		if interfered.CompareAndSwap(false, true) {
			mustDo(t, repo, id, alice, add(beans, 5)) // another writer: v2
		}
		return cart.Decide(s, alice, add(beans, 1))
	})
	mustFresh(t, resp, err, id, 3)
	if n := count(t, pool, "idempotency_keys"); n != 1 {
		t.Fatalf("%d key rows, want 1", n)
	}
	s, _ := fullFold(t, pool, id)
	if l, _ := s.Line("123"); l.Quantity != 6 {
		t.Fatalf("quantity = %d, want 6 (5 from the other writer, 1 from the keyed command)", l.Quantity)
	}
}

func TestIdempotentOpen(t *testing.T) {
	t.Parallel()
	repo, pool := mustRepo(t)
	ctx := t.Context()
	open := func(key string) (idempotency.Response, error) {
		return repo.OpenIdempotent(ctx, keyed(t, "alice", key, "/v1/carts", struct{}{}), alice, md)
	}
	first, err := open("o1")
	if err != nil || first.Status != http.StatusCreated || first.Version != 1 || first.Replayed {
		t.Fatalf("first open = %+v, %v; want a fresh 201 at v1", first, err)
	}
	resp, err := open("o1")
	mustReplay(t, resp, err, first)

	existing, err := open("o2")
	if err != nil || existing.Status != http.StatusOK || existing.CartID != first.CartID || existing.Replayed {
		t.Fatalf("open with another key = %+v, %v; want a fresh 200 for %s", existing, err, first.CartID)
	}
	mustDo(t, repo, first.CartID, alice, add(mustProduct(t, repo, "123"), 1))
	mustDo(t, repo, first.CartID, alice, cart.Checkout{})

	resp, err = open("o1")
	mustReplay(t, resp, err, first)
	next, err := open("o3")
	if err != nil || next.Status != http.StatusCreated || next.CartID == first.CartID {
		t.Fatalf("open after checkout = %+v, %v; want a new cart", next, err)
	}
	if n := count(t, pool, "carts"); n != 2 {
		t.Fatalf("%d carts, want 2", n)
	}
}

func TestIdempotencyKeyExpires(t *testing.T) {
	t.Parallel()
	clock := &movableClock{}
	repo, pool := mustRepo(t, postgres.WithClock(clock.now), postgres.WithIdempotencyTTL(time.Hour))
	id := mustOpen(t, repo, alice)
	ctx := t.Context()

	resp, err := addKeyed(ctx, t, repo, id, alice, "k", 1)
	mustFresh(t, resp, err, id, 2)
	clock.advance(59 * time.Minute)
	resp, err = addKeyed(ctx, t, repo, id, alice, "k", 1)
	if err != nil || !resp.Replayed {
		t.Fatalf("within the TTL = %+v, %v; want a replay", resp, err)
	}

	clock.advance(2 * time.Minute)
	resp, err = addKeyed(ctx, t, repo, id, alice, "k", 1)
	mustFresh(t, resp, err, id, 3) // an expired key is no key: the command runs again
	if n := keyCount(t, pool, "alice", "k"); n != 1 {
		t.Fatalf("%d rows for the key, want 1 (the expired one replaced)", n)
	}
	clock.advance(2 * time.Hour)
	if _, err := addKeyed(ctx, t, repo, id, alice, "k", 7); err != nil {
		t.Fatalf("another request with an expired key: %v", err)
	}

	t.Run("DeleteExpiredKeys", func(t *testing.T) {
		for _, key := range []string{"a", "b", "c"} {
			if _, err := addKeyed(ctx, t, repo, id, alice, key, 1); err != nil {
				t.Fatal(err)
			}
		}
		clock.advance(2 * time.Hour)
		live, err := addKeyed(ctx, t, repo, id, alice, "live", 1)
		if err != nil {
			t.Fatal(err)
		}
		events := count(t, pool, "events")
		n, err := repo.DeleteExpiredKeys(ctx, 2) // two batches
		if err != nil || n != 4 {
			t.Fatalf("DeleteExpiredKeys = %d, %v; want 4 (k, a, b, c)", n, err)
		}
		if count(t, pool, "idempotency_keys") != 1 || count(t, pool, "events") != events {
			t.Fatal("the cleanup deleted a live key or touched the event log")
		}
		resp, err := addKeyed(ctx, t, repo, id, alice, "live", 1)
		mustReplay(t, resp, err, live)
	})
}

// TestConcurrentIdempotentRetries: a client retrying one command many times
// at once gets one set of events and the same response every time, even
// without conflict retries.
func TestConcurrentIdempotentRetries(t *testing.T) {
	t.Parallel()
	const retries = 20
	for _, tc := range []struct {
		name string
		path string
		cmd  func(p *cart.Product) cart.Command
	}{
		{"AddItem", "/add-item", func(p *cart.Product) cart.Command { return add(p, 1) }},
		// The twin that loads the cart after the first checkout committed
		// must replay, not refuse to check out a checked-out cart.
		{"Checkout", "/checkout", func(*cart.Product) cart.Command { return cart.Checkout{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo, pool := mustRepo(t, postgres.WithConflictRetries(0))
			id := mustOpen(t, repo, alice)
			beans := mustProduct(t, repo, "123")
			mustDo(t, repo, id, alice, add(beans, 1))
			req := keyed(t, "alice", "retried", "/v1/carts/"+id+tc.path, tc.name)
			cmd := tc.cmd(beans)

			var (
				wg        sync.WaitGroup
				responses = make([]idempotency.Response, retries)
				errs      = make([]error, retries)
			)
			for i := range retries {
				wg.Go(func() { responses[i], errs[i] = doKeyed(t.Context(), repo, req, id, alice, cmd) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("a retry failed: %v", err)
			}
			fresh := 0
			for _, r := range responses {
				if !r.Replayed {
					fresh++
				}
				if r.Status != responses[0].Status || string(r.Body) != string(responses[0].Body) || r.Version != 3 {
					t.Errorf("response %+v %s, want v3 and the same as %+v %s", r, r.Body, responses[0], responses[0].Body)
				}
			}
			if fresh != 1 {
				t.Errorf("%d responses not replayed, want 1", fresh)
			}
			if n, o := count(t, pool, "events"), count(t, pool, "outbox"); n != 3 || o != 3 {
				t.Fatalf("%d events, %d outbox rows; want 3 of each (open, add, the retried command once)", n, o)
			}
		})
	}
	t.Run("Open", func(t *testing.T) {
		t.Parallel()
		repo, pool := mustRepo(t, postgres.WithConflictRetries(0))
		req := keyed(t, "alice", "retried", "/v1/carts", struct{}{})
		var (
			wg        sync.WaitGroup
			responses = make([]idempotency.Response, retries)
			errs      = make([]error, retries)
		)
		for i := range retries {
			wg.Go(func() { responses[i], errs[i] = repo.OpenIdempotent(t.Context(), req, alice, md) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("a retry failed: %v", err)
		}
		for _, r := range responses {
			if r.Status != http.StatusCreated || string(r.Body) != string(responses[0].Body) {
				t.Errorf("response %+v %s, want the 201 of %s", r, r.Body, responses[0].Body)
			}
		}
		if n, c := count(t, pool, "events"), count(t, pool, "carts"); n != 1 || c != 1 {
			t.Fatalf("%d events, %d carts; want 1 and 1", n, c)
		}
	})
}
